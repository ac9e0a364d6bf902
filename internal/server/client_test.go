package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

// testServer runs a Herald node on a free loopback port for one test.
type testServer struct {
	*Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// testTransport is the transport startServer uses when the config names
// none; TestGoroutineTransport switches it to run tests on the other one.
var testTransport = ""

func startServer(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer that lets setup adjust the node before it
// serves.
func startServerWith(t *testing.T, cfg config.Config, setup func(*Server)) *testServer {
	t.Helper()
	return startServerOpts(t, cfg, options{}, setup)
}

// startServerOpts is startServerWith with substitute parts.
func startServerOpts(t *testing.T, cfg config.Config, opt options, setup func(*Server)) *testServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Transport == "" {
		cfg.Transport = testTransport
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 3 * time.Second
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	for i := range cfg.Apps {
		cfg.Apps[i].Normalize()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := newServer(cfg, log, opt)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t *testing.T) error {
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err // later calls see the same result
		return err
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Errorf("server did not stop within 10s; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		return errors.New("timeout")
	}
}

func testApp(id string) apps.App {
	return apps.App{ID: id, Key: "key-" + id, Secret: "secret-" + id, ClientEvents: true}
}

// wsClient is a raw protocol client: it sends and reads exact frames.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, ts *testServer, path string) *wsClient {
	t.Helper()
	return dialWith(t, ws.DefaultDialer, ts, path)
}

// dialWith is dial through d.
func dialWith(t *testing.T, d ws.Dialer, ts *testServer, path string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, "ws://"+ts.addr+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	c := &wsClient{t: t, conn: conn, br: br}
	t.Cleanup(func() { conn.Close() })
	return c
}

// connect dials the app and reads connection_established, returning the socket id.
func connect(t *testing.T, ts *testServer, key string) (*wsClient, string) {
	t.Helper()
	c := dial(t, ts, "/app/"+key+"?protocol=7&client=go-test&version=1.0")
	m := c.read()
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

type frameMsg struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
	// close is set when the server closed the connection instead.
	closeCode int
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next text message, or a frameMsg with closeCode set when
// the server closes, or the read error (a timeout after d).
func (c *wsClient) next(d time.Duration) (frameMsg, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		hdr, err := ws.ReadHeader(c.br)
		if err != nil {
			return frameMsg{}, err
		}
		p := make([]byte, hdr.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return frameMsg{}, err
		}
		switch hdr.OpCode {
		case ws.OpClose:
			code := 0
			if len(p) >= 2 {
				code = int(p[0])<<8 | int(p[1])
			}
			return frameMsg{closeCode: code, Data: json.RawMessage(p[min(2, len(p)):])}, nil
		case ws.OpText:
			var m frameMsg
			if err := json.Unmarshal(p, &m); err != nil {
				return frameMsg{}, fmt.Errorf("server sent invalid JSON %q: %w", p, err)
			}
			return m, nil
		case ws.OpPing, ws.OpPong:
			continue
		default:
			return frameMsg{}, fmt.Errorf("unexpected opcode %v", hdr.OpCode)
		}
	}
}

// readWithin is next that fails the test on any error.
func (c *wsClient) readWithin(d time.Duration) frameMsg {
	c.t.Helper()
	m, err := c.next(d)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *wsClient) read() frameMsg { c.t.Helper(); return c.readWithin(5 * time.Second) }

// expect reads until a message with the given event arrives (skipping
// others), failing on a close.
func (c *wsClient) expect(event string) frameMsg {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.readWithin(time.Until(deadline))
		if m.closeCode != 0 {
			c.t.Fatalf("connection closed with %d while waiting for %s", m.closeCode, event)
		}
		if m.Event == event {
			return m
		}
	}
	c.t.Fatalf("no %s within 5s", event)
	return frameMsg{}
}

// expectSilence asserts nothing arrives for d.
func (c *wsClient) expectSilence(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	hdr, err := ws.ReadHeader(c.br)
	if err == nil {
		p := make([]byte, hdr.Length)
		io.ReadFull(c.br, p)
		c.t.Fatalf("expected nothing, got opcode %v %s", hdr.OpCode, p)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("expected a read timeout, got %v", err)
	}
}

// expectClose reads until the server's close frame and returns its code.
func (c *wsClient) expectClose() int {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.readWithin(time.Until(deadline))
		if m.closeCode != 0 {
			return m.closeCode
		}
	}
	c.t.Fatal("no close within 5s")
	return 0
}

// alive checks the connection still answers pusher:ping.
func (c *wsClient) alive() {
	c.t.Helper()
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	c.expect("pusher:pong")
}

func (c *wsClient) subscribe(channel, authTok, channelData string) {
	d := map[string]any{"channel": channel, "auth": authTok}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": d})
}

// errorData decodes pusher:error data.
func errorData(t *testing.T, m frameMsg) (code *int, message string) {
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

func channelToken(a apps.App, socketID, channel, data string) string {
	return auth.Token(a.Key, a.Secret, auth.ChannelString(socketID, channel, data))
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
