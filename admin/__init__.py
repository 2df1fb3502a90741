"""The property staff's web panel: server-rendered pages over the services in server/."""
