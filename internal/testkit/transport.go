package testkit

import (
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/transport"
)

// Transport is a transport.Conn that records what its session sends, for
// session tests without sockets. With Limit set, Send refuses a message
// that would take the bytes held past it, as a real transport does for a
// client that does not read.
type Transport struct {
	// Limit bounds the bytes held since the last Take; zero is no bound.
	Limit int

	mu       sync.Mutex
	sent     [][]byte
	held     int
	code     int // close code; 0 while open
	reason   string
	aborted  bool
	lastRead time.Time
	handler  transport.Handler
}

var _ transport.Conn = (*Transport)(nil)

// Start implements transport.Conn.
func (c *Transport) Start(h transport.Handler) {
	c.mu.Lock()
	c.handler = h
	c.mu.Unlock()
}

// Send implements transport.Conn.
func (c *Transport) Send(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.code != 0:
		return transport.ErrClosed
	case c.Limit > 0 && c.held+len(p) > c.Limit:
		return transport.ErrQueueFull
	}
	c.sent = append(c.sent, p)
	c.held += len(p)
	return nil
}

// Close implements transport.Conn.
func (c *Transport) Close(code int, reason string) { c.end(code, reason, false) }

// Abort implements transport.Conn.
func (c *Transport) Abort(code int, reason string) { c.end(code, reason, true) }

func (c *Transport) end(code int, reason string, abort bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code == 0 {
		c.code, c.reason, c.aborted = code, reason, abort
	}
}

// LastRead implements transport.Conn: the time SetLastRead gave.
func (c *Transport) LastRead() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRead
}

// SetLastRead sets what LastRead reports: when the client last sent
// anything.
func (c *Transport) SetLastRead(t time.Time) {
	c.mu.Lock()
	c.lastRead = t
	c.mu.Unlock()
}

// Take returns what was sent since the last Take.
func (c *Transport) Take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sent
	c.sent, c.held = nil, 0
	return out
}

// Closed reports the close code (0 while open), its reason, and whether
// the connection was aborted rather than closed after its queue.
func (c *Transport) Closed() (code int, reason string, aborted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason, c.aborted
}
