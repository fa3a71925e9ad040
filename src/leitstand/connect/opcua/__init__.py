"""OPC UA client connector: subscribes to a server's variables and hands their values to ingest.

config.py   endpoint, security, and which node becomes which record (sample, state or counter)
decode.py   OPC UA data values → Arrow tables in the record schemas, and what cannot be a record
client.py   the connector (session, subscription, monitored items, reconnect, health) and `browse`
"""
