# Helpers shared by the bench/serving scripts (sourced after `cd` to the repository root, with
# PY set to the venv's python).

# A free port (TCP and UDP both free: HTTP/3 shares the HTTPS port number).
free_port() { "$PY" -c 'import sys; sys.path.insert(0, "."); from tests.support.ports import free_udp_port; print(free_udp_port())'; }

# Wait up to 60 s for 127.0.0.1:PORT to accept; on failure name it (and show LOG's tail).
wait_port() {  # port [log]
  for _ in $(seq 1200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 not ready" >&2
  [[ -n ${2:-} ]] && tail -5 "$2" >&2
  return 1
}

# An access token for the development admin from the server on PORT.
token() {  # port
  curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"email":"admin@localhost.local","password":"admin123"}' "http://127.0.0.1:$1/api/v2/auth/login" |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["data"]["access_token"])'
}
