# Stops the runtime whose data dir is DATA_DIR, if it runs, and waits until it is gone: SIGTERM first
# (it closes every app's database), SIGKILL after 30 s. A pid is trusted only if that process's command
# line names DATA_DIR, since pids are reused. The data dir itself is kept.
set -eu
pidfile="$DATA_DIR/runtime.pid"
ours() {
	[ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$DATA_DIR"
}
pid=$(cat "$pidfile" 2>/dev/null || true)
if ours "$pid"; then
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while ours "$pid" && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if ours "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		while ours "$pid"; do sleep 0.1; done
	fi
fi
rm -f "$pidfile"
