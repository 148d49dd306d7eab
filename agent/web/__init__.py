"""The box's own web page: live view of each source with its boxes and zones, zones drawn on the
picture and saved into the configuration, and the recent cases with their evidence. Reads the running
agent through `agent.observe.view.AgentView`; changes only the configuration file, through the reload
path a SIGHUP takes. Needs the `web` extra (Starlette, uvicorn)."""
