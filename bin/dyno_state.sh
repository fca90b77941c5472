# What a Compose dyno knows of itself, read by bin/proc inside it and by
# make ps (bin/dynos, which runs this in each dyno's sh) from outside.
# POSIX sh, reads only: no fork per look.

# Where bin/proc notes when it restarted the dyno's command after R15:
# make ps counts the dyno as up since then, as heroku ps does.
RESTARTED_FILE=/tmp/dyno-restarted

# The container's memory as `docker stats` and Heroku count it: its
# cgroup's usage less the file cache the kernel may drop (inactive_file).
# Set usage, stat, cache (stat's key for that cache), events and limit_file
# to the container's cgroup files, v2 else v1; fail where there are none.
cgroup_memory_files() {
	if [ -f /sys/fs/cgroup/memory.current ]; then
		usage=/sys/fs/cgroup/memory.current stat=/sys/fs/cgroup/memory.stat cache=inactive_file
		events=/sys/fs/cgroup/memory.events limit_file=/sys/fs/cgroup/memory.max
	elif [ -f /sys/fs/cgroup/memory/memory.usage_in_bytes ]; then
		usage=/sys/fs/cgroup/memory/memory.usage_in_bytes stat=/sys/fs/cgroup/memory/memory.stat
		cache=total_inactive_file events=/sys/fs/cgroup/memory/memory.oom_control
		limit_file=/sys/fs/cgroup/memory/memory.limit_in_bytes
	else
		return 1
	fi
}

# Set used to the container's memory in bytes (cgroup_memory_files first).
read_used() {
	read -r used <"$usage"
	while read -r key value; do
		[ "$key" = "$cache" ] && used=$((used - value)) && break
	done <"$stat"
}

# Print make ps's look at the dyno: its memory in bytes (or an empty line),
# then, if bin/proc restarted its command, when (UTC, ISO 8601).
dyno_look() {
	if cgroup_memory_files && read_used; then echo "$used"; else echo; fi
	cat "$RESTARTED_FILE" 2>/dev/null || true
}
