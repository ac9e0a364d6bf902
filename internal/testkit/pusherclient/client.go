// Package pusherclient is a raw Pusher protocol client for tests: it dials
// a node's /app/{key}, sends exact messages and frames, and reads what the
// server sends, failing the test on anything unexpected. It is not
// pusher-js: it does only what a test tells it, so tests can also send what
// no well-behaved client would.
package pusherclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

// Client is one raw connection.
type Client struct {
	T *testing.T
	// Conn is the socket; BR reads from it, bytes that came with the
	// handshake included.
	Conn net.Conn
	BR   *bufio.Reader
}

// Message is one server message as a Pusher client decodes it, or, with
// Close set, the server's close frame (Data then holds the reason).
type Message struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
	// Close is the close code when the server closed the connection.
	Close int `json:"-"`
}

// Dial opens a WebSocket to path on addr (host:port) with ws.DefaultDialer.
func Dial(t *testing.T, addr, path string) *Client {
	t.Helper()
	return DialWith(t, ws.DefaultDialer, addr, path)
}

// DialWith is Dial through d. The connection is closed when the test ends.
func DialWith(t *testing.T, d ws.Dialer, addr, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, "ws://"+addr+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	c := &Client{T: t, Conn: conn, BR: br}
	t.Cleanup(func() { conn.Close() })
	return c
}

// Connect dials the app of key with protocol 7 and reads
// connection_established, returning the socket id.
func Connect(t *testing.T, addr, key string) (*Client, string) {
	t.Helper()
	c := Dial(t, addr, "/app/"+key+"?protocol=7&client=go-test&version=1.0")
	m := c.Read()
	if m.Event != "pusher:connection_established" {
		t.Fatalf("first frame = %+v, want connection_established", m)
	}
	var data string
	if err := json.Unmarshal(m.Data, &data); err != nil {
		t.Fatalf("connection_established data is not a JSON string: %s", m.Data)
	}
	var est struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(data), &est); err != nil {
		t.Fatal(err)
	}
	return c, est.SocketID
}

// Send sends v as a JSON text message.
func (c *Client) Send(v any) {
	c.T.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.T.Fatal(err)
	}
	c.SendRaw(b)
}

// SendRaw sends b as one text message, as it is.
func (c *Client) SendRaw(b []byte) {
	c.T.Helper()
	if err := wsutil.WriteClientText(c.Conn, b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Next returns the next text message, or a Message with Close set when the
// server closes, or the read error (a timeout after d). Pings and pongs
// are skipped.
func (c *Client) Next(d time.Duration) (Message, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	for {
		hdr, err := ws.ReadHeader(c.BR)
		if err != nil {
			return Message{}, err
		}
		p := make([]byte, hdr.Length)
		if _, err := io.ReadFull(c.BR, p); err != nil {
			return Message{}, err
		}
		switch hdr.OpCode {
		case ws.OpClose:
			code := 0
			if len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
			}
			return Message{Close: code, Data: json.RawMessage(p[min(2, len(p)):])}, nil
		case ws.OpText:
			var m Message
			if err := json.Unmarshal(p, &m); err != nil {
				return Message{}, fmt.Errorf("server sent invalid JSON %q: %w", p, err)
			}
			return m, nil
		case ws.OpPing, ws.OpPong:
			continue
		default:
			return Message{}, fmt.Errorf("unexpected opcode %v", hdr.OpCode)
		}
	}
}

// ReadWithin is Next that fails the test on any error.
func (c *Client) ReadWithin(d time.Duration) Message {
	c.T.Helper()
	m, err := c.Next(d)
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return m
}

// Read is ReadWithin 5 s.
func (c *Client) Read() Message { c.T.Helper(); return c.ReadWithin(5 * time.Second) }

// Expect reads until a message with the given event arrives (skipping
// others), failing on a close or after 5 s.
func (c *Client) Expect(event string) Message {
	c.T.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.ReadWithin(time.Until(deadline))
		if m.Close != 0 {
			c.T.Fatalf("connection closed with %d while waiting for %s", m.Close, event)
		}
		if m.Event == event {
			return m
		}
	}
	c.T.Fatalf("no %s within 5s", event)
	return Message{}
}

// ExpectSilence asserts that nothing arrives for d.
func (c *Client) ExpectSilence(d time.Duration) {
	c.T.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(d))
	hdr, err := ws.ReadHeader(c.BR)
	if err == nil {
		p := make([]byte, hdr.Length)
		io.ReadFull(c.BR, p)
		c.T.Fatalf("expected nothing, got opcode %v %s", hdr.OpCode, p)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.T.Fatalf("expected a read timeout, got %v", err)
	}
}

// ExpectClose reads until the server's close frame and returns its code.
func (c *Client) ExpectClose() int {
	c.T.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.ReadWithin(time.Until(deadline))
		if m.Close != 0 {
			return m.Close
		}
	}
	c.T.Fatal("no close within 5s")
	return 0
}

// Alive checks that the connection still answers pusher:ping.
func (c *Client) Alive() {
	c.T.Helper()
	c.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	c.Expect("pusher:pong")
}

// Subscribe sends pusher:subscribe with the given auth and channel data
// (either may be empty).
func (c *Client) Subscribe(channel, authTok, channelData string) {
	c.T.Helper()
	d := map[string]any{"channel": channel, "auth": authTok}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	c.Send(map[string]any{"event": "pusher:subscribe", "data": d})
}

// ErrorData decodes pusher:error data.
func ErrorData(t *testing.T, m Message) (code *int, message string) {
	t.Helper()
	var d struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("pusher:error data %s: %v", m.Data, err)
	}
	return d.Code, d.Message
}

// ChannelToken is the auth an app's backend signs for socketID to join
// channel, with presence channel data if any.
func ChannelToken(a apps.App, socketID, channel, data string) string {
	return auth.Token(a.Key, a.Secret, auth.ChannelString(socketID, channel, data))
}
