"""The HTTP layer: the recording client (every exchange an event), auth classes, inbound recording."""
