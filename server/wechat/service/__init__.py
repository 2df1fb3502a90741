"""The chatbot's services; the window imports the modules (`from server.wechat.service import
inbox`), nothing is re-exported here."""
