package bench

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
)

// The raw dialer (Linux, epoll reader, ws:// URLs) opens connections
// without the Go runtime's netpoller: it connects a non-blocking socket,
// writes the upgrade request itself and hands the socket to an epoll loop
// at once, which reads the 101 response and then the Pusher frames. A
// connection storm then costs the tool socket, connect, write, one
// epoll_ctl and the loop's reads, not the runtime's connection set-up
// (registration, getsockname, getpeername) nor the dup and close that move a
// runtime connection into the epoll reader. It serves connections that need
// nothing but connection_established (connect, idle without --subscribe);
// the others dial as before.

// dial states, in dialState.state.
const (
	dialPending int32 = iota
	dialDone          // established: the connection belongs to the reader
	dialFailed        // failed or given up: the loop drops the socket
)

// dialState is a raw dial under way. state and done are shared with the
// dialing goroutine; the rest belongs to the loop once the connection is
// registered.
type dialState struct {
	state atomic.Int32
	done  chan error // one result: nil once connection_established came

	req      []byte // what is left of the request to write
	accept   string // the Sec-WebSocket-Accept the server must answer
	head     []byte // the response head so far
	upgraded bool   // the 101 is in; what follows are frames
}

// finish settles the dial once and tells the dialing goroutine; it reports
// whether this call settled it.
func (d *dialState) finish(err error) bool {
	to := dialDone
	if err != nil {
		to = dialFailed
	}
	if !d.state.CompareAndSwap(dialPending, to) {
		return false
	}
	d.done <- err
	return true
}

// maxResponseHead bounds the server's 101 response head.
const maxResponseHead = 8 << 10

// response takes bytes read while the 101 response head is incomplete and
// returns what follows the head, once it is complete and valid.
func (d *dialState) response(data []byte) ([]byte, error) {
	d.head = append(d.head, data...)
	end := bytes.Index(d.head, []byte("\r\n\r\n"))
	if end < 0 {
		if len(d.head) > maxResponseHead {
			return nil, errors.New("upgrade response head too long")
		}
		return nil, nil
	}
	if err := checkUpgradeResponse(d.head[:end+4], d.accept); err != nil {
		return nil, err
	}
	rest := d.head[end+4:]
	d.head = nil
	d.upgraded = true
	return rest, nil
}

// checkUpgradeResponse accepts a "101 Switching Protocols" head that
// upgrades to WebSocket with the expected accept value (RFC 6455 4.1).
func checkUpgradeResponse(head []byte, accept string) error {
	lines := bytes.Split(bytes.TrimSuffix(head, []byte("\r\n\r\n")), []byte("\r\n"))
	status := lines[0]
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) && !bytes.Equal(status, []byte("HTTP/1.1 101")) {
		return fmt.Errorf("upgrade refused: %.100s", status)
	}
	var upgrade, connection, acceptOK bool
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return fmt.Errorf("malformed response header %.100q", l)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte(",")) {
				connection = connection || bytes.EqualFold(bytes.TrimSpace(tok), []byte("upgrade"))
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			acceptOK = string(value) == accept
		}
	}
	switch {
	case !upgrade:
		return errors.New("upgrade response without Upgrade: websocket")
	case !connection:
		return errors.New("upgrade response without Connection: upgrade")
	case !acceptOK:
		return errors.New("upgrade response with a wrong Sec-WebSocket-Accept")
	}
	return nil
}

// newNonce returns a fresh Sec-WebSocket-Key and the accept value that
// answers it.
func newNonce() (key, accept string) {
	var raw [16]byte
	rand.Read(raw[:])
	key = base64.StdEncoding.EncodeToString(raw[:])
	return key, acceptFor(key)
}

// acceptFor is the Sec-WebSocket-Accept that answers key.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rawTarget is where the raw dialer connects and what it asks for.
type rawTarget struct {
	addr   *net.TCPAddr
	host   string // Host header
	target string // request target: path and query
}

// newRawTarget resolves a ws:// URL once; it fails for anything the raw
// dialer does not speak (wss://).
func newRawTarget(wsURL string) (*rawTarget, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("the raw dialer speaks ws://, not %s://", u.Scheme)
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, err
	}
	return &rawTarget{addr: addr, host: u.Host, target: u.RequestURI()}, nil
}

// request is the upgrade request with the given key.
func (t *rawTarget) request(key string) []byte {
	b := make([]byte, 0, 160+len(t.target)+len(t.host))
	b = append(b, "GET "...)
	b = append(b, t.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = append(b, key...)
	return append(b, "\r\nSec-WebSocket-Version: 13\r\n\r\n"...)
}
