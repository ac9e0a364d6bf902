package pusher

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/heraldhq/herald/internal/lograte"

	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/transport"
	"github.com/heraldhq/herald/internal/wsconn"
)

// Defaults for a zero Config.
const DefaultPongTimeout = 30 * time.Second

// Protocol names this front end in the hub's event stream.
const Protocol = "pusher"

// Config configures the Pusher front end.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
	// PongTimeout is how long a pinged client has to answer before it is
	// closed with 4201. Zero means DefaultPongTimeout.
	PongTimeout time.Duration
	// Clock drives the sessions' timers; nil is hub.ConnClock.
	Clock hub.SessionClock
	// Upgrader, if set, lets ServeHTTP upgrade requests that reach the
	// front end through net/http.
	Upgrader *wsconn.Upgrader
}

// FrontEnd serves Pusher protocol connections at /app/{key}: the Pusher
// wire format and Pusher policy. Admission, quotas, socket ids, draining,
// presence and fan-out are the hub's.
type FrontEnd struct {
	cfg   Config
	hub   *hub.Hub
	log   *slog.Logger
	clock hub.SessionClock
	// errLog bounds the sessions' error lines: during a broker outage
	// every client request fails the same way.
	errLog lograte.Limiter
}

// New returns a front end.
func New(cfg Config) *FrontEnd {
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = hub.ConnClock
	}
	return &FrontEnd{cfg: cfg, hub: cfg.Hub, log: cfg.Log, clock: cfg.Clock, errLog: lograte.Limiter{Every: time.Second, Burst: errLogBurst}}
}

// ServeHTTP upgrades GET /app/{key} and runs the connection (see
// ServeConn).
func (f *FrontEnd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := f.cfg.Upgrader.Upgrade(w, r)
	if err != nil {
		f.log.Debug("websocket upgrade failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	f.ServeConn(conn, r.URL.Path, transport.Query(r.URL.RawQuery))
}

// ServeConn runs a connection upgraded from GET /app/{key} (path is the
// request's path), whose query was query. Refusals (unknown app, disabled
// app, unsupported protocol, quotas) are sent as a pusher:error on the
// upgraded socket followed by a close with the same code, because that is
// the only place Pusher clients look for them.
func (f *FrontEnd) ServeConn(conn transport.Conn, path string, query transport.Query) {
	app := f.cfg.Apps.ByKey(appKey(path))
	if code, msg := admitApp(app, query); code != 0 {
		appID := ""
		if app != nil {
			appID = app.ID
		}
		f.hub.Refused(appID, hub.ReasonRefused)
		refuse(conn, code, msg)
		return
	}
	hc, err := f.hub.Admit(app.ID, app.MaxConnections, conn)
	if err != nil {
		code, msg := closeCode(hub.AdmitReason(err))
		refuse(conn, code, msg)
		return
	}
	s := newSession(f, app, hc)
	if !hc.Attach(s) {
		hc.Closed(hub.ReasonShutdown)
		refuse(conn, CodeReconnect, MsgShutdown)
		return
	}
	s.start()
	conn.Start(s)
}

// appKey is the {key} of /app/{key}.
func appKey(path string) string {
	const prefix = "/app/"
	if len(path) <= len(prefix) || path[:len(prefix)] != prefix {
		return ""
	}
	return path[len(prefix):]
}

// refuse sends a refusal and closes an unadmitted connection.
func refuse(conn transport.Conn, code Code, msg string) {
	conn.Send(errorFrame(code, msg, ""))
	conn.Close(int(code), msg)
	conn.Start(discard{})
}

// admitApp applies the Pusher front end's own admission rules, returning 0
// or the code and message to refuse the connection with. The hub's
// (draining, node limit, app quota) come after.
func admitApp(app *apps.App, query transport.Query) (Code, string) {
	if app == nil {
		return CodeAppNotFound, MsgAppNotFound
	}
	if !app.IsEnabled() {
		return CodeAppDisabled, MsgAppDisabled
	}
	p := query.Get("protocol")
	if p == "" {
		return CodeNoProtocol, "No protocol version supplied"
	}
	if v, err := strconv.Atoi(p); err != nil || v < 4 || v > 7 {
		return CodeUnsupportedProto, "Unsupported protocol version " + truncate(p, 16) + ": versions 4 to 7 are supported"
	}
	return 0, ""
}

// discard handles a refused connection until its close completes.
type discard struct{}

func (discard) HandleMessage([]byte) {}
func (discard) HandleClose(error)    {}
