package centrifugo

import (
	"log/slog"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/transport"
)

// Protocol names this front end in the hub's event stream.
const Protocol = "centrifugo"

// Path is where Centrifugo clients connect. With a single app the node
// serves it at Path; with several, each app is at Path/{app key} and Path
// alone is refused.
const Path = "/connection/websocket"

// Defaults for a zero Config, Centrifugo's own.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultPongTimeout  = 8 * time.Second
	DefaultExpiredDelay = 25 * time.Second
	DefaultStaleDelay   = 10 * time.Second
)

// Config configures the Centrifugo front end.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
	// Version is announced in connect and refresh replies.
	Version string
	// PingInterval is the time between server pings; PongTimeout is how
	// long the client has to answer one (3012 "no pong").
	PingInterval time.Duration
	PongTimeout  time.Duration
	// ExpiredDelay is the grace after a connection's or subscription's
	// expiry for the client to refresh it (3005, or unsubscribe 2501).
	ExpiredDelay time.Duration
	// StaleDelay is how long a connection may stay without connecting
	// (3502 "stale").
	StaleDelay time.Duration
	// Clock drives the sessions' timers; nil is hub.ConnClock.
	Clock hub.SessionClock
}

// FrontEnd serves Centrifugo client connections.
type FrontEnd struct {
	cfg   Config
	hub   *hub.Hub
	log   *slog.Logger
	clock hub.SessionClock
}

// New returns a front end.
func New(cfg Config) *FrontEnd {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.PingInterval, DefaultPingInterval)
	def(&cfg.PongTimeout, DefaultPongTimeout)
	def(&cfg.ExpiredDelay, DefaultExpiredDelay)
	def(&cfg.StaleDelay, DefaultStaleDelay)
	if cfg.PingInterval < time.Second {
		cfg.PingInterval = time.Second // announced in whole seconds
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = hub.ConnClock
	}
	if cfg.Version == "" {
		cfg.Version = "herald"
	}
	return &FrontEnd{cfg: cfg, hub: cfg.Hub, log: cfg.Log, clock: cfg.Clock}
}

// appFor picks the app of a connection's path: Path/{key}, or Path itself
// when the node has exactly one app.
func (f *FrontEnd) appFor(path string) *apps.App {
	if key, ok := strings.CutPrefix(path, Path+"/"); ok {
		return f.cfg.Apps.ByKey(key)
	}
	if path == Path {
		if all := f.cfg.Apps.All(); len(all) == 1 {
			return all[0]
		}
	}
	return nil
}

// ServeConn runs a connection upgraded at Path or Path/{key}. A refusal is
// a close frame with a Centrifugo code and a reason, which is where
// centrifuge-js looks for it.
func (f *FrontEnd) ServeConn(conn transport.Conn, path string, _ transport.Query) {
	app := f.appFor(path)
	if app == nil || !app.IsEnabled() {
		appID := ""
		if app != nil {
			appID = app.ID
		}
		f.hub.Refused(appID, hub.ReasonRefused)
		refuse(conn, CloseBadRequest, "bad request: unknown or disabled app")
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
		code, msg := closeCode(hub.ReasonShutdown)
		refuse(conn, code, msg)
		return
	}
	s.start()
	conn.Start(s)
}

func refuse(conn transport.Conn, code int, msg string) {
	conn.Close(code, msg)
	conn.Start(discard{})
}

type discard struct{}

func (discard) HandleMessage([]byte) {}
func (discard) HandleClose(error)    {}
