# Starts the runtime detached and waits until it answers. Run by local-exec with DATA_DIR, BIN, LISTEN,
# IDLE_TIMEOUT, MAX_APPS, LOG_LEVEL, NAME, STOP (the path of stop.sh) and APPFLEET_TOKEN in its environment.
set -eu
umask 077
mkdir -p "$DATA_DIR"
chmod 700 "$DATA_DIR"

# The token goes to a 0600 file, never on a command line, and leaves this shell's environment before the
# runtime starts, so that it is in the runtime's environment neither.
printf '%s' "$APPFLEET_TOKEN" >"$DATA_DIR/token.new"
mv "$DATA_DIR/token.new" "$DATA_DIR/token"
unset APPFLEET_TOKEN

# A runtime an earlier run left behind (a failed apply, a lost state) is stopped first.
/bin/sh "$STOP"

# Port 0 means a free port, chosen by the runtime at the first start and kept for every later one.
listen=$LISTEN
kept=""
if [ "${LISTEN##*:}" = "0" ] && [ -s "$DATA_DIR/listen" ]; then
	kept=$(cat "$DATA_DIR/listen")
	listen=$kept
fi

answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "http://$1/readyz" 2>/dev/null
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O /dev/null -T 2 "http://$1/readyz" 2>/dev/null
	else
		true # the runtime writes runtime.addr once it listens
	fi
}

start() {
	rm -f "$DATA_DIR/runtime.addr"
	# Its own session and no terminal: neither Terraform's end nor a Ctrl-C reaches it, and with its stdio
	# redirected Terraform does not wait for it.
	setsid "$BIN" runtime serve --data-dir "$DATA_DIR" --listen "$1" --token-file "$DATA_DIR/token" \
		--name "$NAME" --idle-timeout "$IDLE_TIMEOUT" --max-apps "$MAX_APPS" --log-level "$LOG_LEVEL" \
		</dev/null >>"$DATA_DIR/runtime.log" 2>&1 &
	pid=$!
	echo "$pid" >"$DATA_DIR/runtime.pid"
	i=0
	while [ "$i" -lt 300 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		if [ -s "$DATA_DIR/runtime.addr" ] && answers "$(cat "$DATA_DIR/runtime.addr")"; then
			cat "$DATA_DIR/runtime.addr" >"$DATA_DIR/listen"
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "the runtime did not answer within 30 s; see $DATA_DIR/runtime.log" >&2
	/bin/sh "$STOP"
	exit 1
}

if start "$listen"; then
	exit 0
fi
if [ -n "$kept" ]; then
	# The kept port is taken by something else: take another free one.
	echo "the runtime could not listen on $kept again; choosing another free port" >&2
	if start "$LISTEN"; then
		exit 0
	fi
fi
echo "the runtime exited at start; the end of $DATA_DIR/runtime.log:" >&2
tail -n 3 "$DATA_DIR/runtime.log" >&2
exit 1
