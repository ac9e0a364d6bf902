// Package server wires Herald together: config to apps, broker, hub, the
// protocol front ends and the REST API, behind one HTTP listener. It owns
// every long-lived goroutine and shuts them down in order.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/centrifugo"
	"github.com/heraldhq/herald/internal/centrifugoapi"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/devauth"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/pusher"
	"github.com/heraldhq/herald/internal/transport"
	"github.com/heraldhq/herald/internal/webhook"
	"github.com/heraldhq/herald/internal/wsconn"
)

// Server is one Herald node.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	apps   *apps.Registry
	broker broker.Broker
	// cluster is the shared broker in cluster mode, else nil.
	cluster *clusterBroker
	hub     *hub.Hub
	up      *wsconn.Upgrader
	routes  []upgradeRoute
	http    *http.Server
	// rest serves REST connections that send publishes (see restServer);
	// everything else REST goes to http.
	rest    *restServer
	serving atomic.Pointer[demux] // the demux, once Serve has started
	// stopping is set when shutdown begins: /readyz answers 503 from then on.
	stopping atomic.Bool
	metrics  *metrics.Metrics
	health   healthCache
	// buffered are the observers with a queue of their own, flushed on
	// shutdown after the hub has drained.
	buffered []*hub.Buffered
	// webhooks sends the apps' webhooks; flushed on shutdown after the
	// observers, before the broker closes (it claims from the broker).
	webhooks *webhook.Dispatcher
	// group owns every long-lived goroutine the server starts.
	group group
	debug *http.Server // the profiler's, if any
	// metricsSrv serves /metrics on MetricsAddr, if set.
	metricsSrv *http.Server
}

// upgradeRoute is one WebSocket endpoint and the front end that serves its
// connections. Every route gets the raw accept path (the demux) as well as
// net/http's.
type upgradeRoute struct {
	// pattern is the net/http pattern, e.g. "/app/{key}".
	pattern string
	// prefix is what a request path starts with; with exact it must equal it.
	prefix string
	exact  bool
	serve  func(conn transport.Conn, path string, query transport.Query)
}

// matches reports whether the route serves path.
func (r *upgradeRoute) matches(path string) bool {
	if r.exact {
		return path == r.prefix
	}
	rest, ok := strings.CutPrefix(path, r.prefix)
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// New builds a node from a validated config. Zero HTTP timeouts and a zero
// bound on pending connections mean their defaults.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	return newServer(cfg, log, options{})
}

// options are the parts of a node that tests substitute.
type options struct {
	broker  broker.Broker // nil: the config's (Redis in cluster mode, else in memory)
	pollers int           // epoll loops; 0: one per CPU
}

func newServer(cfg config.Config, log *slog.Logger, opt options) (*Server, error) {
	cfg = cfg.WithHTTPDefaults()
	reg, err := apps.NewRegistry(cfg.Apps)
	if err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	up, err := wsconn.NewUpgrader(wsconn.Config{
		Transport:       cfg.Transport,
		MaxMessageBytes: cfg.MaxMessageBytes,
		MaxQueueBytes:   cfg.MaxQueueBytes,
		Pollers:         opt.pollers,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, apps: reg, up: up, broker: opt.broker}
	if s.broker == nil {
		if s.broker, s.cluster, err = newBroker(cfg, log); err != nil {
			up.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	s.metrics = metrics.New(metrics.Options{Version: cfg.Version, Commit: cfg.Commit, BytesWritten: up.BytesWritten, Log: log})
	if s.cluster != nil {
		if err := s.metrics.WatchRedis(s.cluster.state); err != nil {
			return nil, err
		}
	}
	s.webhooks = s.newWebhooks(reg)
	observers := []hub.Observer{s.metrics}
	if s.webhooks.Enabled() {
		observers = append(observers, s.webhooks)
	}
	hc := hub.Config{
		Broker:         s.metrics.InstrumentBroker(s.broker),
		Observers:      observers,
		MaxConnections: cfg.MaxConnections,
	}
	if s.webhooks.Enabled() {
		hc.TransitionsFor = s.webhooks.Wants
	}
	s.hub = hub.New(hc)
	fe := pusher.New(pusher.Config{
		Apps:        reg,
		Hub:         s.hub,
		Log:         log,
		PongTimeout: cfg.PongTimeout,
	})
	cf := centrifugo.New(centrifugo.Config{
		Apps:         reg,
		Hub:          s.hub,
		Log:          log,
		Version:      cfg.Version,
		PingInterval: cfg.Centrifugo.PingInterval,
		PongTimeout:  cfg.Centrifugo.PongTimeout,
		ExpiredDelay: cfg.Centrifugo.ExpiredCloseDelay,
		StaleDelay:   cfg.Centrifugo.StaleCloseDelay,
	})
	s.routes = []upgradeRoute{
		{pattern: "/app/{key}", prefix: "/app/", serve: fe.ServeConn},
		// Centrifugo clients: the single app at the bare path, or any app
		// by its key.
		{pattern: centrifugo.Path, prefix: centrifugo.Path, exact: true, serve: cf.ServeConn},
		{pattern: centrifugo.Path + "/{key}", prefix: centrifugo.Path + "/", serve: cf.ServeConn},
	}
	api := httpapi.New(httpapi.Config{Apps: reg, Hub: s.hub, Log: log, Authenticated: authenticated, Observe: s.metrics.ObserveREST})
	s.rest = newRESTServer(api, log, cfg.HTTPHeaderTimeout, cfg.HTTPBodyTimeout, cfg.HTTPWriteTimeout, cfg.HTTPIdleTimeout)

	mux := http.NewServeMux()
	for i := range s.routes {
		rt := &s.routes[i]
		mux.HandleFunc("GET "+rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r)
			if err != nil {
				log.Debug("websocket upgrade failed", "err", err, "remote", r.RemoteAddr)
				return
			}
			rt.serve(conn, r.URL.Path, transport.Query(r.URL.RawQuery))
		})
	}
	mux.Handle("/apps/", api)
	capi := centrifugoapi.New(centrifugoapi.Config{
		Apps: reg, Hub: s.hub, Log: log, Authenticated: authenticated,
		NodeID: s.nodeID(), NodeName: hostname(), Version: cfg.Version,
	})
	mux.Handle(centrifugoapi.Prefix, capi)
	mux.Handle(centrifugoapi.Prefix+"/", capi)
	if cfg.DevApp {
		// The development app's credentials are public: its endpoints
		// protect nothing a page could not sign itself, and let private
		// and presence channels be tried without a backend.
		dev := cfg.Apps[0]
		h, err := devauth.Handler(devauth.Options{Key: dev.Key, Secret: dev.Secret, JWTSecret: dev.JWTSecret,
			JWTAudience: dev.JWTAudience, JWTIssuer: dev.JWTIssuer, AnyOrigin: true})
		if err != nil {
			return nil, fmt.Errorf("development auth endpoints: %w", err)
		}
		mux.Handle(devauth.ChannelPath, withCloseIfPending(h))
		mux.Handle(devauth.UserPath, withCloseIfPending(h))
		log.Warn(devauth.Warning)
	}
	mux.HandleFunc("GET /healthz", s.serveLive)
	mux.HandleFunc("GET /livez", s.serveLive)
	mux.HandleFunc("GET /readyz", s.serveReady)
	if cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", withCloseIfPending(s.metrics.Handler()))
	}
	s.http = &http.Server{
		Handler:           withBodyTimeout(publishFirst(api, mux), cfg.HTTPBodyTimeout, cfg.HTTPWriteTimeout),
		ReadHeaderTimeout: cfg.HTTPHeaderTimeout,
		// From the end of a request's head to the end of its answer.
		// Hijacking a connection for a WebSocket clears it.
		WriteTimeout: cfg.HTTPWriteTimeout,
		// Idle keep-alive connections of REST clients are closed in
		// time, TCP keep-alive or not (raw-accepted sockets have none).
		IdleTimeout: cfg.HTTPIdleTimeout,
		// net/http would take 1 MiB per head; every pending connection
		// may hold one, so max_pending_connections times this is what
		// anonymous clients can make the node hold in heads.
		MaxHeaderBytes: maxHTTPHeadBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// newWebhooks builds the webhook dispatcher of the apps that have
// targets; it does nothing (and starts nothing) when none has.
func (s *Server) newWebhooks(reg *apps.Registry) *webhook.Dispatcher {
	var ids []string
	for _, a := range reg.All() {
		if len(a.Webhooks) > 0 {
			ids = append(ids, a.ID)
		}
	}
	wc := s.cfg.Webhook
	cfg := webhook.Config{
		Apps: reg.All(),
		// The hub is built after the dispatcher, which observes it.
		Settle:         func(ctx context.Context, e hub.Event) (bool, error) { return s.hub.Settle(ctx, e) },
		Shared:         s.cluster != nil,
		BatchWindow:    wc.BatchWindow,
		Delay:          wc.Delay,
		RetryLimit:     wc.RetryLimit,
		RequestTimeout: wc.RequestTimeout,
		QueueSize:      wc.QueueSize,
		Log:            s.log,
	}
	if len(ids) > 0 {
		cfg.Recorder = s.metrics.Webhooks(ids)
	}
	return webhook.New(cfg)
}

// serveLive answers while the process serves HTTP at all: /livez, and
// /healthz as before.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	closeIfPending(w, r)
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok\n"))
}

// serveReady answers 200 while the node should get new clients: not while
// it is shutting down, at its connection limit, waiting at start for its
// node id, or when its broker fails its health check.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	closeIfPending(w, r)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	if why := s.notReady(r.Context()); why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(why + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// readyTimeout bounds the broker health check of one /readyz, and
// readyCache is how long its answer is reused: probes, which anyone may
// send, cost the broker at most one round trip per readyCache.
const (
	readyTimeout = 2 * time.Second
	readyCache   = time.Second
)

// brokerHealth runs the broker's health check at most once per readyCache
// and never twice at once: meanwhile the last answer is given.
func (s *Server) brokerHealth(ctx context.Context) error {
	h := &s.health
	if !h.mu.TryLock() {
		return h.last()
	}
	defer h.mu.Unlock()
	if time.Since(h.at) < readyCache {
		return h.last()
	}
	// The answer is every probe's for readyCache, not only this one's: a
	// probe that goes away (its request's context cancelled) must not
	// make it, or any client could have the node report its broker
	// unavailable by sending GET /readyz and closing at once.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	err := s.broker.Ping(ctx)
	// Logged when the answer changes, not at every probe: an outage is
	// one line, and one more when it ends.
	switch prev := h.last(); {
	case err != nil && prev == nil:
		s.log.Warn("broker health check failed", "err", err)
	case err == nil && prev != nil:
		s.log.Info("broker health check passes again")
	}
	h.at = time.Now()
	h.err.Store(&err)
	return err
}

// healthCache is the last broker health check.
type healthCache struct {
	mu  sync.Mutex // held while a check runs
	at  time.Time  // when the last one ended; guarded by mu
	err atomic.Pointer[error]
}

func (h *healthCache) last() error {
	if e := h.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *Server) notReady(ctx context.Context) string {
	switch {
	case s.stopping.Load() || s.hub.Draining():
		return "shutting down"
	case s.hub.AtCapacity():
		return "at connection limit"
	case s.cluster != nil && s.cluster.claiming():
		return "waiting for another process's claim of this node id to expire"
	}
	if err := s.brokerHealth(ctx); err != nil {
		return "broker unavailable"
	}
	return ""
}

// maxHTTPHeadBytes bounds a request head that net/http reads (431 beyond
// it): generous for cookies, as proxies in front of Herald allow (nginx: 32
// KiB over four buffers), and four times the heads the demux reads itself.
const maxHTTPHeadBytes = 64 << 10

// withBodyTimeout gives each request body d to arrive, from the end of its
// head. net/http's own ReadTimeout would count from the start of the head
// and cover both, so the deadline is set here instead, per request; the
// next request's head gets ReadHeaderTimeout again. A connection hijacked
// for a WebSocket has its deadlines cleared by net/http.
//
// A request with a body also gets its write deadline (net/http's
// WriteTimeout, counted from the end of the head) moved to write after
// the body's: the answer then has the whole write timeout after the body
// is due, and a body that is late gets its 408 rather than a silent close
// when the two timeouts are equal.
func withBodyTimeout(h http.Handler, d, write time.Duration) http.Handler {
	type deadlines interface {
		SetReadDeadline(time.Time) error
		SetWriteDeadline(time.Time) error
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http's own ResponseWriter, which an http.ResponseController
		// would find too, at the cost of an allocation per request.
		if dl, ok := w.(deadlines); ok && r.ContentLength != 0 { // a declared length, or chunked
			now := time.Now()
			dl.SetReadDeadline(now.Add(d))
			dl.SetWriteDeadline(now.Add(d + write))
		}
		if r.TransferEncoding != nil {
			// The demux does not follow chunk framing: the connection
			// closes after this request (see framing).
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
		if w.Header().Get("Connection") == "close" {
			// Answered and on its way out (a refusal closes): the
			// connection is pending no more, so that a flood of refused
			// requests, each closed within net/http's short drain, does not
			// keep new clients out.
			if c := httpConnOf(r); c != nil {
				c.release()
			}
		}
	})
}

// publishFirst serves the REST API's publishes, the requests REST clients
// send most, without the route table's matching, and everything else
// through mux.
func publishFirst(api *httpapi.API, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !api.ServePublish(w, r) {
			mux.ServeHTTP(w, r)
		}
	})
}

// authenticated is the REST API's hook for a correctly signed request: its
// connection is pending no more.
func authenticated(r *http.Request) {
	if c := httpConnOf(r); c != nil {
		c.release()
	}
}

// closeIfPending answers a request on a connection that has not
// authenticated with Connection: close, rather than keep a connection that
// is only closed once idle (see httpConnState).
func closeIfPending(w http.ResponseWriter, r *http.Request) {
	if c := httpConnOf(r); c != nil && c.pending.Load() {
		w.Header().Set("Connection", "close")
	}
}

// Listen opens the listening socket, so callers learn of a busy port before
// Serve.
func (s *Server) Listen() (net.Listener, error) {
	lc := net.ListenConfig{Control: deferAccept}
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.logFileLimit()
	return ln, nil
}

// Serve serves ln until ctx ends, then shuts down in order: /readyz turns
// 503, the node keeps serving for the shutdown delay so that load balancers
// stop sending clients, it stops accepting, tells every client to reconnect
// (4200) and waits for them to go, lets the work queued on their behalf and
// the observers finish, and closes the broker; all within ShutdownTimeout
// after the delay. In cluster mode it shuts down the same way, and returns
// an error wrapping the broker's, when the broker stops because another
// process holds the node id (redisbroker.ErrNodeIDInUse at start,
// redisbroker.ErrNodeIDTaken later).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// WebSocket upgrades bypass net/http; everything else, REST included,
	// reaches it on the same port.
	// The side listeners come first: a busy port there fails the start
	// before any client is accepted.
	if err := s.startSide(); err != nil {
		s.closeSide()
		s.group.Wait()
		ln.Close()
		return err
	}
	var takeFD func(int, []byte, []byte) bool
	if s.up.RawSockets() {
		takeFD = s.takeUpgradeFD
	}
	prefixes := make([]string, len(s.routes))
	for i, rt := range s.routes {
		prefixes[i] = "GET " + rt.prefix
	}
	d := newDemuxWith(ln, demuxConfig{
		prefixes:   prefixes,
		timeout:    s.cfg.HTTPHeaderTimeout,
		take:       s.takeUpgrade,
		takeFD:     takeFD,
		rest:       s.rest,
		maxPending: s.cfg.MaxPendingConnections,
		log:        s.log,
	})
	s.serving.Store(d)
	s.hookConns()
	errc := make(chan error, 1)
	s.group.Go(func() { errc <- s.http.Serve(d.httpListener()) })
	var brokerFailed <-chan struct{} // nil, never ready, for a single node
	if s.cluster != nil {
		brokerFailed = s.cluster.failed
	}
	select {
	case err := <-errc:
		d.close()
		d.wait()
		s.rest.closeAll()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.hub.Drain(sctx)
		s.hub.Close(sctx)
		s.webhooks.Close(sctx)
		s.broker.Close(sctx)
		s.up.Close()
		s.closeSide()
		s.group.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-brokerFailed:
		// Another process holds the node id: whatever this node does
		// reaches the cluster no more. It goes as on SIGTERM, its clients
		// told to reconnect (to a node that is in the cluster).
		err := s.cluster.err()
		s.log.Error("this node's id belongs to another process; shutting down", "node_id", s.cluster.nodeID, "err", err)
		return errors.Join(fmt.Errorf("cluster: %w", err), s.shutdown(d, errc))
	}
	return s.shutdown(d, errc)
}

// shutdown runs the steps of Serve's graceful shutdown.
func (s *Server) shutdown(d *demux, errc <-chan error) error {
	s.stopping.Store(true)
	s.log.Info("shutting down", "connections", s.hub.Connections(), "delay", s.shutdownDelay().String())
	if delay := s.shutdownDelay(); delay > 0 {
		time.Sleep(delay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// http.Server.Shutdown closes the listener and waits for REST requests;
	// it does not see hijacked WebSocket connections, which the hub drains.
	rerrc := make(chan error, 1)
	go func() { rerrc <- s.rest.shutdown(sctx) }()
	herr := s.http.Shutdown(sctx)
	herr = errors.Join(herr, <-rerrc)
	// Upgrades already under way reach the hub before it drains.
	d.wait()
	derr := s.hub.Drain(sctx)
	// What is left of the grace period bounds the queued work too: a
	// broker call that ignores its cancelled context does not keep the
	// process from exiting.
	cerr := s.hub.Close(sctx)
	// The counts the leaving clients set to 0 reach Redis before the
	// observers close: a channel they vacated over the cluster is reported
	// and its channel_vacated held back, then sent below. Left to the
	// broker's Close, whose cleanup reports nothing, it would be lost.
	if f, ok := s.broker.(interface{ FlushCounts(context.Context) error }); ok {
		if err := f.FlushCounts(sctx); err != nil {
			s.log.Warn("subscription counts not all written to redis before shutdown", "err", err)
		}
	}
	// The hub emits nothing more: what observers have queued is let
	// through, within what is left of the grace period.
	for _, b := range s.buffered {
		b.Close(sctx.Done())
	}
	// Webhooks are flushed before the broker goes: held-back ones are
	// claimed from it.
	if err := s.webhooks.Close(sctx); err != nil {
		s.log.Warn("webhooks not all delivered before the shutdown timeout", "err", err)
	}
	berr := s.broker.Close(sctx)
	s.up.Close()
	var serr error
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		serr = fmt.Errorf("serve: %w", err)
	}
	s.closeSide()
	s.group.Wait()
	return errors.Join(serr, herr, derr, cerr, berr)
}

// shutdownDelay is how long the node keeps serving after /readyz turned 503.
func (s *Server) shutdownDelay() time.Duration { return s.cfg.ShutdownDelay }

// startSide opens the side listeners that are configured.
func (s *Server) startSide() error {
	if s.cfg.DebugAddr != "" {
		dbg, err := s.serveDebug()
		if err != nil {
			return err
		}
		s.debug = dbg
	}
	if s.cfg.MetricsAddr != "" {
		ms, err := s.serveMetrics()
		if err != nil {
			return err
		}
		s.metricsSrv = ms
	}
	return nil
}

// closeSide closes the side listeners (profiler, metrics), last: metrics
// stay scrapable while the node drains.
func (s *Server) closeSide() {
	if s.debug != nil {
		s.debug.Close()
	}
	if s.metricsSrv != nil {
		s.metricsSrv.Close()
	}
}

// hookConns makes net/http tell the demux's connections what becomes of
// them (see httpConnState) and puts each in its requests' context, keeping
// hooks set before.
func (s *Server) hookConns() {
	state, connCtx := s.http.ConnState, s.http.ConnContext
	s.http.ConnState = func(c net.Conn, st http.ConnState) {
		httpConnState(c, st)
		if state != nil {
			state(c, st)
		}
	}
	s.http.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connCtx != nil {
			ctx = connCtx(ctx, c)
		}
		return withHTTPConn(ctx, c)
	}
}

// pendingConnections is how many connections are pending: accepted, and
// neither a WebSocket connection nor authenticated by a signed request.
func (s *Server) pendingConnections() int {
	if d := s.serving.Load(); d != nil {
		return d.pending.count()
	}
	return 0
}

// route returns the upgrade route serving path, or nil.
func (s *Server) route(path string) *upgradeRoute {
	for i := range s.routes {
		if s.routes[i].matches(path) {
			return &s.routes[i]
		}
	}
	return nil
}

// takeUpgrade serves a WebSocket upgrade of one of the routes read by the
// demux directly, and declines anything else, net/http's to answer. It
// does not block on the client: the 101 response leaves with the
// connection's first message.
func (s *Server) takeUpgrade(nc net.Conn, head, rest []byte) bool {
	req, rt := s.parseUpgrade(head)
	if rt == nil {
		return false
	}
	conn, err := s.up.UpgradeRaw(nc, &req, rest)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "err", err, "remote", nc.RemoteAddr().String())
		return true
	}
	rt.serve(conn, req.Path, transport.Query(req.RawQuery))
	return true
}

// takeUpgradeFD is takeUpgrade for a socket accepted outside the Go
// runtime; a connection it declines stays the caller's.
func (s *Server) takeUpgradeFD(fd int, head, rest []byte) bool {
	req, rt := s.parseUpgrade(head)
	if rt == nil {
		return false
	}
	conn, err := s.up.UpgradeFD(fd, &req, rest)
	if err != nil {
		return false
	}
	rt.serve(conn, req.Path, transport.Query(req.RawQuery))
	return true
}

// parseUpgrade accepts a plain WebSocket upgrade of one of the routes.
func (s *Server) parseUpgrade(head []byte) (wsconn.UpgradeRequest, *upgradeRoute) {
	req, ok := wsconn.ParseUpgrade(head)
	if !ok {
		return req, nil
	}
	return req, s.route(req.Path)
}

// serveMetrics serves /metrics on its own listener.
func (s *Server) serveMetrics() (*http.Server, error) {
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", s.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	s.group.Go(func() { srv.Serve(ln) })
	s.log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, nil
}

// withCloseIfPending is closeIfPending for a whole handler.
func withCloseIfPending(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closeIfPending(w, r)
		h.ServeHTTP(w, r)
	})
}

// serveDebug serves Go's profiler on its own listener, away from the public
// port.
func (s *Server) serveDebug() (*http.Server, error) {
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("debug listener on %s: %w", s.cfg.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.group.Go(func() { srv.Serve(ln) })
	s.log.Info("profiler listening", "addr", ln.Addr().String())
	return srv, nil
}

// NodeID is the node's id in its cluster, "" for a node that serves alone.
func (s *Server) NodeID() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.nodeID
}

// Apps is the node's app registry.
func (s *Server) Apps() *apps.Registry { return s.apps }

// nodeID identifies the node in the server API's info: the Redis broker's
// node id in cluster mode, otherwise a random one for this run.
func (s *Server) nodeID() string {
	if s.cluster != nil {
		return s.cluster.nodeID
	}
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "herald"
	}
	return h
}
