# A container's memory, as `docker stats` and Heroku count it: its cgroup's
# usage less the file cache the kernel may drop (inactive_file), cgroup v2
# or v1. Sourced by bin/proc (a dyno's own R14/R15 watch); bin/dynos runs
# it in each dyno for make ps. POSIX sh, reads only: no fork per look.

# Set usage, stat, cache (stat's key for that cache), events and limit_file
# to this container's cgroup files; fail where there is no cgroup to read.
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
