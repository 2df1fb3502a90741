"""The official account's chatbot (公众号): WeChat's server posts what a follower writes or
clicks to `/wechat/official` (routes.py); we answer with the balance, usage, records, a link
into the mini-program or the binding steps, using the tenant API's own services so the
chatbot and the mini-program always show the same numbers."""
