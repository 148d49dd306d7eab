"""Changing a running agent safely: the checks of check-config (`check`), the sources as threads that
can be stopped and started one by one (`supervisor`), reloading a configuration with roll-back to the
last good one (`reload`), and signed updates from the platform over MQTT (`remote`)."""
