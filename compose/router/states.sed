# What HAProxy says of the dynos on stderr, as make logs shows it.
#
# Heroku's router logs requests only; HAProxy also reports each change in a
# dyno's state, several lines at a time and at WARNING or ALERT level: a
# make restart printed nine, among them "[ALERT] backend 'web' has no
# server available!" These rules keep one plain line per change that
# matters (found, up, down and why, drained, gone, none up) and drop the
# steps of DNS resolution and drain. Any other line passes as HAProxy wrote it.
# (docker-compose.yml runs HAProxy's stderr through it, with sed -E.)
/ changed its IP from .* by docker\/embedded\.$/d
/ administratively READY thanks to valid DNS answer\.$/d
/ remains in forced drain mode\.$/d
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) is DOWN, reason: ([^,]+), info: "([^"]*)".*/\1 is down (\2: \3)/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) is DOWN, reason: ([^,.]+).*/\1 is down (\2)/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) \('[^']*'\) is UP\/(READY|DRAIN) \(resolves again\)\.$/\1 started: the router found its container/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) is UP \(leaving forced drain\)\.$/\1: drain ended/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) is UP\b.*/\1 is up/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) enters drain state.*/\1 is drained: it gets no new requests/
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) (is going DOWN for|was DOWN and now enters) maintenance \(DNS [^)]*\).*/\1 is gone (no container of that name runs)/
# Any other change to a dyno, in HAProxy's words less its level and the servers it counts.
s/^\[WARNING\] +\([0-9]+\) : Server web\/(web\.[0-9]+) ([^.]*)\..*/\1 \2/
s/^\[ALERT\] +\([0-9]+\) : backend 'web' has no server available!$/no web dyno is up: requests wait for one that starts (H20 if none is up in time), or get H10 if none does/
