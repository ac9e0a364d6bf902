package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/heraldhq/herald/internal/transport"
)

// Client is a front end's connection as the hub drives it: a subscriber
// that can also be told to end.
type Client interface {
	Subscriber
	// CloseWith ends the connection for reason, the way the client's
	// protocol says (its own close code and text). It is called from any
	// goroutine, possibly with hub locks held: it must not block and must
	// not call back into the hub.
	CloseWith(reason CloseReason)
	// Protocol names the client's front end ("pusher"), for the event
	// stream.
	Protocol() string
}

// Conn is the hub's record of one admitted connection: its identity, its
// transport, and the queue of work done on its behalf off the transport's
// loop. A front end gets one from Admit, attaches its Client and calls
// Closed when the transport reports the end.
//
// An idle connection holds one of these, so it stays small (a test pins
// its size): the work queue exists only once work was queued, and the
// socket id's bytes are part of the record rather than a string of their
// own.
type Conn struct {
	app    *appConns         // its hub and app id, shared with the app's others
	sid    [socketIDMax]byte // the socket id; written by Admit, then read only
	sidLen uint8
	at     int32 // index in the registry's all; guarded by its mu
	tr     transport.Conn
	client Client                  // set by Attach
	ops    atomic.Pointer[opQueue] // nil until the first Do
	slow   atomic.Bool             // cut off as a slow consumer
	closed atomic.Bool
}

// socketIDMax bounds a socket id: nine random digits, a dot and at most
// nine of the sequence (see Admit).
const socketIDMax = 19

// AppID is the connection's app.
func (c *Conn) AppID() string { return c.app.id }

// SocketID is the connection's node-unique id, "digits.digits" as Pusher
// clients expect. The string shares the record's bytes, which never change
// once Admit wrote them.
func (c *Conn) SocketID() string { return unsafe.String(&c.sid[0], int(c.sidLen)) }

// Transport is the connection's transport.
func (c *Conn) Transport() transport.Conn { return c.tr }

// Send queues a message payload. A client whose queue is full is cut off
// as a slow consumer: it cannot keep up, and waiting for it would hold
// everyone else back. Send never blocks. It is on the broadcast path, once
// per subscriber and message, and small enough to be inlined there.
func (c *Conn) Send(payload []byte) {
	if err := c.tr.Send(payload); err != nil {
		c.sendFailed(err)
	}
}

// sendFailed handles a refused Send: only a full queue needs anything.
func (c *Conn) sendFailed(err error) {
	if !errors.Is(err, transport.ErrQueueFull) {
		return
	}
	if !c.slow.Swap(true) {
		c.app.hub.slowConsumers.Add(1)
	}
	if cl := c.client; cl != nil {
		cl.CloseWith(ReasonSlowConsumer)
	} else {
		c.tr.Abort(1008, ReasonSlowConsumer.String())
	}
}

// connRegistry is the node's set of admitted connections, for quotas and
// draining.
// appConns is one app's connections on the node: their count, and what
// every Conn would otherwise hold itself, its hub and its app id (24 bytes
// that would take a Conn past its 80-byte size class).
type appConns struct {
	hub *Hub
	id  string
	n   int // connections; guarded by the registry's mu
}

// count is a's connections; 0 for nil (an app with none).
func (a *appConns) count() int {
	if a == nil {
		return 0
	}
	return a.n
}

type connRegistry struct {
	mu sync.Mutex
	// all is a slice, each Conn knowing its index, rather than a set: a
	// map entry cost an idle connection about 29 bytes, a slot costs 8.
	all      []*Conn
	byApp    map[string]*appConns
	draining bool
	// empty is closed and replaced when the last connection leaves while
	// draining, so Drain can wait for it.
	empty chan struct{}
	seq   uint64
}

func (r *connRegistry) init() {
	r.byApp = map[string]*appConns{}
	var seed [8]byte
	rand.Read(seed[:])
	// The sequence part of socket ids starts at a random offset, so ids of
	// different nodes do not collide in practice.
	r.seq = binary.LittleEndian.Uint64(seed[:]) % 1e9
}

// Admission errors, each with the reason a front end reports.
var (
	ErrDraining     = errors.New("hub: node is shutting down")
	ErrOverCapacity = errors.New("hub: node is at its connection limit")
	ErrOverQuota    = errors.New("hub: app is at its connection quota")
)

// AdmitReason maps an admission error to its close reason.
func AdmitReason(err error) CloseReason {
	switch {
	case errors.Is(err, ErrDraining):
		return ReasonShutdown
	case errors.Is(err, ErrOverCapacity):
		return ReasonOverCapacity
	case errors.Is(err, ErrOverQuota):
		return ReasonOverQuota
	}
	return ReasonRefused
}

// Admit counts a new connection of appID over transport tr against the
// node's limit and the app's quota (maxPerApp <= 0: none) and gives it a
// socket id. On refusal it returns ErrDraining, ErrOverCapacity or ErrOverQuota and
// emits EventConnectionRefused; the caller refuses the client.
func (h *Hub) Admit(appID string, maxPerApp int, tr transport.Conn) (*Conn, error) {
	r := &h.conns
	r.mu.Lock()
	var err error
	switch {
	case r.draining:
		err = ErrDraining
	case h.cfg.MaxConnections > 0 && len(r.all) >= h.cfg.MaxConnections:
		err = ErrOverCapacity
	case maxPerApp > 0 && r.byApp[appID].count() >= maxPerApp:
		err = ErrOverQuota
	}
	if err != nil {
		r.mu.Unlock()
		h.Refused(appID, AdmitReason(err))
		return nil, err
	}
	r.seq++
	seq := r.seq
	app := r.byApp[appID]
	if app == nil {
		app = &appConns{hub: h, id: appID}
		r.byApp[appID] = app
	}
	app.n++
	c := &Conn{app: app, tr: tr}
	c.at = int32(len(r.all))
	r.all = append(r.all, c)
	r.mu.Unlock()
	var b [4]byte
	rand.Read(b[:])
	// The sequence starts below 1e9 and wraps there, so that the id fits its
	// array: a node's ids differ over a billion consecutive connections, and
	// after that the random part would have to repeat too.
	id := strconv.AppendUint(c.sid[:0], uint64(binary.LittleEndian.Uint32(b[:])%1e9), 10)
	id = append(id, '.')
	id = strconv.AppendUint(id, seq%1e9, 10)
	c.sidLen = uint8(len(id))
	return c, nil
}

// Refused records a connection refused before admission (unknown app,
// unsupported protocol version) or by it.
func (h *Hub) Refused(appID string, reason CloseReason) {
	h.emit(Event{Type: EventConnectionRefused, AppID: appID, Reason: reason})
}

// Attach names the connection's client and announces the connection; from
// then on a Drain closes it. It returns false when a Drain began after
// Admit: the front end then closes the client with ReasonShutdown itself
// and calls Closed.
func (c *Conn) Attach(cl Client) bool {
	r := &c.app.hub.conns
	r.mu.Lock()
	if r.draining {
		r.mu.Unlock()
		return false
	}
	c.client = cl
	r.mu.Unlock()
	c.app.hub.emit(Event{Type: EventConnectionOpened, AppID: c.app.id, SocketID: c.SocketID(), Protocol: cl.Protocol()})
	return true
}

// Closed removes the connection from the registry once its transport has
// ended, and records why. The front end has already undone the
// connection's subscriptions (off-loop work it queued with Do still runs,
// in order). Later calls do nothing.
func (c *Conn) Closed(reason CloseReason) {
	if c.closed.Swap(true) {
		return
	}
	h := c.app.hub
	r := &h.conns
	r.mu.Lock()
	// The last connection takes the leaver's slot.
	last := r.all[len(r.all)-1]
	r.all[c.at], last.at = last, c.at
	r.all[len(r.all)-1] = nil
	r.all = r.all[:len(r.all)-1]
	// An app's record goes with its last connection; the next one
	// makes a new one.
	if c.app.n--; c.app.n == 0 {
		delete(r.byApp, c.app.id)
	}
	if r.draining && len(r.all) == 0 && r.empty != nil {
		close(r.empty)
		r.empty = nil
	}
	r.mu.Unlock()
	if c.client != nil {
		h.emit(Event{Type: EventConnectionClosed, AppID: c.app.id, SocketID: c.SocketID(), Reason: reason})
	}
}

// SlowConsumers is how many connections have been cut off because their
// send queue filled, counted when it happens.
func (h *Hub) SlowConsumers() uint64 { return h.slowConsumers.Load() }

// Connections is the number of admitted connections on this node.
func (h *Hub) Connections() int {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return len(h.conns.all)
}

// AppConnections is an app's connection count on this node.
func (h *Hub) AppConnections(appID string) int {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return h.conns.byApp[appID].count()
}

// Draining reports whether Drain has begun.
func (h *Hub) Draining() bool {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return h.conns.draining
}

// AtCapacity reports whether the node is at its connection limit.
func (h *Hub) AtCapacity() bool {
	if h.cfg.MaxConnections <= 0 {
		return false
	}
	return h.Connections() >= h.cfg.MaxConnections
}

// Drain refuses new connections, closes every admitted one with
// ReasonShutdown and waits until all are gone and the work queued on their
// behalf is done, or ctx ends.
func (h *Hub) Drain(ctx context.Context) error {
	r := &h.conns
	r.mu.Lock()
	r.draining = true
	empty := make(chan struct{})
	if len(r.all) == 0 {
		close(empty)
	} else {
		r.empty = empty
	}
	// A connection admitted but not attached yet fails its Attach and is
	// closed by its front end.
	clients := make([]Client, 0, len(r.all))
	for _, c := range r.all {
		if c.client != nil {
			clients = append(clients, c.client)
		}
	}
	r.mu.Unlock()
	for _, cl := range clients {
		cl.CloseWith(ReasonShutdown)
	}
	select {
	case <-empty:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.WaitOps(ctx)
}

// DefaultOpTimeout bounds one piece of off-loop work (a broker call made
// on behalf of a connection).
const DefaultOpTimeout = 5 * time.Second
