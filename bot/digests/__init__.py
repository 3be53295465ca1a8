"""Scheduled digests: schedule parsing (`parse`, `cron`), period windows and content
(`content`, `sources`), rendering to a neutral Card (`render`) and the exactly-once
engine (`engine`). Commands live in `handlers/digests.py`, tables in `store/models/digests.py`."""
