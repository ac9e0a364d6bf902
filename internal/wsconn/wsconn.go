// Package wsconn is Herald's WebSocket transport and the only importer of a
// WebSocket library. It upgrades HTTP requests (through net/http, or from a
// request head its caller read off the socket), reads client frames and
// hands whole messages to a Handler, and frames and writes the message
// payloads a session sends from a per-connection queue bounded in bytes:
// whatever is queued leaves in one writev(2), after a header of the
// connection's own for each message. One payload is shared by every
// connection it goes to and never copied into a connection's memory (the
// epoll loop copies small ones, with their headers, into its scratch buffer
// for the length of a writev: one iovec costs the kernel more than copying
// a few hundred bytes).
//
// Two transports sit behind the same Conn interface:
//   - "epoll" (Linux, the default): a few poller goroutines serve every
//     connection; an idle connection holds no goroutine and no buffer.
//   - "goroutine": a reader and a writer goroutine per connection, portable.
//
// The protocol logic above owns no loop of its own: it reacts to Handler
// calls and its own timers, so either transport can run it.
package wsconn

import (
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/transport"
)

// Defaults for a zero Config.
const (
	DefaultMaxMessageBytes = 64 * 1024
	DefaultMaxQueueBytes   = 1 << 20
	// MaxQueueBytesLimit bounds MaxQueueBytes: a client half a gigabyte
	// behind will not catch up, and twice the limit (what a connection may
	// owe while a write is under way) must fit a connection's 32-bit byte
	// counts.
	MaxQueueBytesLimit  = 1 << 29
	DefaultWriteTimeout = 10 * time.Second
	// closeGrace is how long a closing connection waits for the client's
	// close reply before dropping the socket.
	closeGrace = 2 * time.Second
)

// Transport names.
const (
	TransportEpoll     = "epoll"
	TransportGoroutine = "goroutine"
)

// Close codes of RFC 6455 used by the transport itself.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	// CloseInvalidPayload is RFC 6455's "invalid frame payload data": a
	// text message or close reason that is not UTF-8.
	CloseInvalidPayload = 1007
	CloseTooBig         = 1009
)

// Errors of Conn.Send, shared by every transport.
var (
	ErrQueueFull = transport.ErrQueueFull
	ErrClosed    = transport.ErrClosed
)

// Config tunes the transport. The zero value uses the defaults above.
type Config struct {
	// Transport is TransportEpoll (default on Linux) or TransportGoroutine.
	Transport string
	// Pollers is the number of epoll loops; zero means one per CPU.
	Pollers int
	// MaxMessageBytes bounds one client message. A frame that declares a
	// message longer than that fails the connection at once with 1009,
	// before its payload is read: nothing is buffered for it.
	MaxMessageBytes int
	// MaxQueueBytes bounds the bytes queued for one client: frames, headers
	// and payloads alike, sent but not yet taken by the kernel. Bytes being
	// handed to the kernel do not count (a client that keeps up may already
	// have read them), so a connection holds at most about twice this much.
	// It is at most MaxQueueBytesLimit (512 MiB); a larger value is taken
	// as that, which keeps twice it within a connection's 32-bit byte
	// counts.
	MaxQueueBytes int
	// WriteTimeout bounds how long a client may keep its socket unwritable
	// (goroutine transport: every write) before it is dropped.
	WriteTimeout time.Duration

	// afterWrite, if set (by tests), runs on the writing goroutine each
	// time a write to a socket returns, before its result is accounted.
	afterWrite func()
}

func (c *Config) normalize() {
	if c.Transport == "" {
		c.Transport = defaultTransport
	}
	if c.Pollers <= 0 {
		c.Pollers = runtime.GOMAXPROCS(0)
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	c.MaxQueueBytes = min(c.MaxQueueBytes, MaxQueueBytesLimit)
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// Handler and Conn are the transport contract (package transport); every
// connection this package returns implements Conn.
type (
	Handler = transport.Handler
	Conn    = transport.Conn
)

// Upgrader turns HTTP requests into connections served by the configured
// transport.
type Upgrader struct {
	cfg     Config
	pollers *pollerSet // nil for the goroutine transport
	// written counts the bytes the goroutine transport wrote; each poller
	// counts its own.
	written atomic.Uint64
}

// NewUpgrader starts the transport's pollers, if any. Close stops them.
func NewUpgrader(cfg Config) (*Upgrader, error) {
	cfg.normalize()
	u := &Upgrader{cfg: cfg}
	switch cfg.Transport {
	case TransportGoroutine:
	case TransportEpoll:
		ps, err := newPollerSet(cfg)
		if err != nil {
			return nil, fmt.Errorf("epoll transport: %w", err)
		}
		u.pollers = ps
	default:
		return nil, fmt.Errorf("unknown transport %q (want %s or %s)", cfg.Transport, TransportEpoll, TransportGoroutine)
	}
	return u, nil
}

// Transport names the transport in use.
func (u *Upgrader) Transport() string { return u.cfg.Transport }

// BytesWritten is the total the transport has handed to the kernel for all
// its connections: 101 responses, frame headers, payloads and control
// frames. The epoll transport counts once per flush of a connection, in a
// counter of each loop's own, and the goroutine transport once per write,
// so the count costs no shared write per message.
func (u *Upgrader) BytesWritten() uint64 {
	n := u.written.Load()
	if u.pollers != nil {
		n += u.pollers.bytesWritten()
	}
	return n
}

// Upgrade completes the WebSocket handshake on r with the same 101 response
// UpgradeRaw writes, or answers r with the refusal RFC 6455 calls for (see
// httpUpgrade) and returns it as an error. The caller then calls Start on
// the connection.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request) (Conn, error) {
	req, refused := httpUpgrade(r)
	if refused != nil {
		refused.write(w)
		return nil, fmt.Errorf("websocket upgrade: %w", refused)
	}
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "the connection cannot be taken over", http.StatusInternalServerError)
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	// Whatever was read past the head, by net/http or by a listener before
	// it, is the client's first frames.
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 {
		early, _ = rw.Reader.Peek(n)
	}
	if ur, ok := nc.(Unreader); ok {
		if more := ur.Unread(); len(more) > 0 {
			early = append(early[:len(early):len(early)], more...)
		}
	}
	return u.UpgradeRaw(nc, &req, early)
}

// Unreader is implemented by a connection that holds bytes read from its
// socket but not yet returned by its Read, such as one whose first bytes a
// listener inspected. Upgrade takes them over with the socket.
type Unreader interface {
	Unread() []byte
}

// Close stops the pollers. Connections still open on them are dropped;
// callers close connections gracefully first.
func (u *Upgrader) Close() {
	if u.pollers != nil {
		u.pollers.close()
	}
}
