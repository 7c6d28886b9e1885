# djaploy's health check, run on the host as `sh -c "$(cat this)" health-check HOST PATH [options]`.
#
# Every value arrives as an argument, never pasted into this text, so no value can run as code.
# GETs http://HOST/PATH (HOST is also the Host header and the TLS name) and requires a final 2xx:
# - "not ready yet" (no connection, a timeout, 502, 503, 504) is retried, at most --attempts times;
# - any other answer (a 500, a 404, ...) fails at once: a release that fails now and then fails;
# - a redirect is followed on the same host (HTTP -> HTTPS included, at most 5), and the page it
#   ends on must be PATH itself (or PATH plus "/", Django's APPEND_SLASH): a redirect to a login
#   page fails unless the login page is what health_check_path names.
# Options:
#   --scheme https     start with HTTPS (default http)
#   --resolve IP       connect to IP for HOST on ports 80 and 443 (the host's own web server)
#   --socket FILE      connect to a unix socket (a gunicorn); an HTTPS redirect is followed on the
#                      same socket with "X-Forwarded-Proto: https", as the web server would send it
#   --attempts N       how many "not ready" answers to wait through (0.25-0.5 s apart)
#   --interval S       seconds between attempts
#   --pid PID          a process that must stay alive (the gunicorn being checked); empty or 0:
#                      it is gone already (systemd's MainPID of a stopped service)
#   --label TEXT       how the check is named in its messages
set -u
host=$1 path=$2
shift 2
scheme=http resolve='' socket='' attempts=30 interval=0.5 pid='' watch='' label="health check $path"
while [ $# -gt 0 ]; do
    case $1 in
        --scheme) scheme=$2 ;;
        --resolve) resolve=$2 ;;
        --socket) socket=$2 ;;
        --attempts) attempts=$2 ;;
        --interval) interval=$2 ;;
        --pid) pid=$2 watch=1 ;;
        --label) label=$2 ;;
        *) echo "health check: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done

body=$(mktemp) && err=$(mktemp) || exit 1
trap 'rm -f "$body" "$err"' EXIT

fail() {
    echo "$label for Host $host failed: $1" >&2
    if [ -s "$body" ]; then head -c 600 "$body" >&2; echo >&2; fi
    if [ -s "$err" ]; then cat "$err" >&2; fi
    exit 1
}

want=${path%%\?*}
url="$scheme://$host$path" forwarded='' redirects=0 tries=0
while :; do
    if [ -n "$watch" ] && { [ -z "$pid" ] || [ "$pid" = 0 ] || ! kill -0 "$pid" 2>/dev/null; }; then
        fail "the release did not start: gunicorn exited"
    fi
    set -- -sS -k -o "$body" -w '%{http_code} %{redirect_url}' --max-time 10 --noproxy '*'
    if [ -n "$socket" ]; then set -- "$@" --unix-socket "$socket"; fi
    if [ -n "$resolve" ]; then set -- "$@" --resolve "$host:80:$resolve" --resolve "$host:443:$resolve"; fi
    if [ -n "$forwarded" ]; then set -- "$@" -H 'X-Forwarded-Proto: https'; fi
    : > "$body"
    answer=$(curl "$@" "$url" 2>"$err") || answer="000 "
    code=${answer%% *} location=${answer#* }
    case $code in
        2??)
            rest=${url#*://}
            case $rest in */*) rest=/${rest#*/} ;; *) rest=/ ;; esac
            rest=${rest%%\?*}
            if [ "$rest" != "$want" ] && [ "$rest" != "$want/" ]; then
                fail "it redirects to $url, which answers HTTP $code; point health_check_path at a view that answers 2xx itself"
            fi
            if [ "$redirects" -gt 0 ]; then code="$code after $redirects redirect(s), at $url"; fi
            echo "$label: HTTP $code"
            exit 0 ;;
        3??)
            redirects=$((redirects + 1))
            case $location in
                "http://$host/"*) next=${location#http://"$host"} ;;
                "https://$host/"*) next=${location#https://"$host"} ;;
                *) fail "HTTP $code redirects to ${location:-nowhere}, another host (not followed)" ;;
            esac
            [ "$redirects" -le 5 ] || fail "more than 5 redirects (last to $location): a redirect loop?"
            if [ -n "$socket" ]; then
                url="http://$host$next"
                case $location in https://*) forwarded=1 ;; esac
            else
                url=$location
            fi
            continue ;;
        000 | 502 | 503 | 504) ;;
        *) fail "HTTP $code (a health check needs 2xx; only 502, 503, 504 and no answer are retried)" ;;
    esac
    tries=$((tries + 1))
    [ "$tries" -lt "$attempts" ] || fail "no ready answer after $attempts attempts (last: HTTP $code)"
    sleep "$interval"
done
