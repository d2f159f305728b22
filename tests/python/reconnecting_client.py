"""A python-socketio client that stays connected as an app would: it prints each connect and
disconnect (with its reason) on a line of its own, so a test can watch it come back by itself
after the server restarts. Usage: reconnecting_client.py URL TOKEN TRANSPORT"""
import sys

import socketio

url, token, transport = sys.argv[1:4]
client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)


@client.event
def connect():
    print("connect", flush=True)


@client.event
def disconnect(reason=None):
    print(f"disconnect {reason}", flush=True)


client.connect(url, headers={"Authorisation": token}, transports=[transport], retry=True)
client.wait()
print("gave up", flush=True)
