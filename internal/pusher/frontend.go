package pusher

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/wsconn"
)

// brokerTimeout bounds one broker call made on behalf of a client frame.
const brokerTimeout = 5 * time.Second

// Defaults for a zero Config.
const DefaultPongTimeout = 30 * time.Second

// Config configures the Pusher front end.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
	// PongTimeout is how long a pinged client has to answer before it is
	// closed with 4201. Zero means DefaultPongTimeout.
	PongTimeout time.Duration
	// MaxConnections caps this node's connections over all apps; beyond it
	// clients are told to back off (4100). Zero is unlimited.
	MaxConnections int
	// Upgrader turns requests into connections of the chosen transport.
	Upgrader *wsconn.Upgrader
}

// FrontEnd serves Pusher protocol connections at /app/{key}.
type FrontEnd struct {
	cfg     Config
	hub     *hub.Hub
	log     *slog.Logger
	metrics metrics

	mu       sync.Mutex
	sessions map[*Session]wsconn.Conn
	draining bool
	wg       sync.WaitGroup // one per live connection

	socketSeq atomic.Uint64
}

type metrics struct {
	slowClients atomic.Int64
}

// New returns a front end.
func New(cfg Config) *FrontEnd {
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := &FrontEnd{cfg: cfg, hub: cfg.Hub, log: cfg.Log, sessions: map[*Session]wsconn.Conn{}}
	var seed [8]byte
	rand.Read(seed[:])
	f.socketSeq.Store(binary.LittleEndian.Uint64(seed[:]) % 1e9)
	return f
}

// SlowClients counts connections cut off because they did not read.
func (f *FrontEnd) SlowClients() int64 { return f.metrics.slowClients.Load() }

// Connections is the number of open connections.
func (f *FrontEnd) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// ServeHTTP upgrades GET /app/{key} and runs the connection (see
// ServeConn).
func (f *FrontEnd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := f.cfg.Upgrader.Upgrade(w, r)
	if err != nil {
		f.log.Debug("websocket upgrade failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	f.ServeConn(conn, r.PathValue("key"), r.URL.Query())
}

// ServeConn runs a connection upgraded from GET /app/{key}, whose query was
// query. Refusals (unknown app, disabled app, unsupported protocol, quotas)
// are sent as a pusher:error on the upgraded socket followed by a close with
// the same code, because that is the only place Pusher clients look for
// them.
func (f *FrontEnd) ServeConn(conn wsconn.Conn, key string, query url.Values) {
	app := f.cfg.Apps.ByKey(key)
	code, msg := f.admit(app, query)
	if code != 0 {
		conn.Send(errorFrame(code, msg, ""))
		conn.Close(int(code), msg)
		conn.Start(discard{})
		return
	}
	socketID := f.newSocketID()
	s := newSession(f, app, conn, socketID)
	f.mu.Lock()
	if f.draining {
		f.mu.Unlock()
		f.hub.RemoveConnection(app.ID)
		conn.Send(errorFrame(CodeReconnect, MsgShutdown, ""))
		conn.Close(int(CodeReconnect), MsgShutdown)
		conn.Start(discard{})
		return
	}
	f.sessions[s] = conn
	f.wg.Add(1)
	f.mu.Unlock()
	s.start()
	conn.Start(s)
}

// admit decides whether a connection may open, returning 0 or the code and
// message to refuse it with. On success the connection is counted against
// the app's quota.
func (f *FrontEnd) admit(app *apps.App, query url.Values) (Code, string) {
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
	if f.cfg.MaxConnections > 0 && f.Connections() >= f.cfg.MaxConnections {
		return CodeOverCapacity, MsgOverCapacity
	}
	if !f.hub.AddConnection(app.ID, app.MaxConnections) {
		return CodeOverQuota, MsgOverQuota
	}
	return 0, ""
}

func (f *FrontEnd) removeSession(s *Session) {
	f.mu.Lock()
	_, ok := f.sessions[s]
	delete(f.sessions, s)
	f.mu.Unlock()
	if ok {
		f.hub.RemoveConnection(s.app.ID)
		f.wg.Done()
	}
}

// newSocketID returns "digits.digits", unique on this node: a random
// per-connection part and a node-wide sequence number that starts at a
// random offset, so ids of different nodes do not collide in practice.
func (f *FrontEnd) newSocketID() string {
	var r [4]byte
	rand.Read(r[:])
	a := binary.LittleEndian.Uint32(r[:]) % 1e9
	b := f.socketSeq.Add(1)
	return strconv.FormatUint(uint64(a), 10) + "." + strconv.FormatUint(b, 10)
}

// Shutdown tells every client to reconnect (4200), refuses new connections
// and waits until every connection is gone or ctx ends.
func (f *FrontEnd) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.draining = true
	conns := make([]wsconn.Conn, 0, len(f.sessions))
	for _, c := range f.sessions {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.Send(errorFrame(CodeReconnect, MsgShutdown, ""))
		c.Close(int(CodeReconnect), MsgShutdown)
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// discard handles a refused connection until its close completes.
type discard struct{}

func (discard) HandleMessage([]byte) {}
func (discard) HandleClose(error)    {}
