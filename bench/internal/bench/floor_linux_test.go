//go:build linux

package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func startTestFloor(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := startFloor(ctx, "127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Wait()
	})
	return "ws://" + s.Addr()
}

// The floor server must carry the scenarios it is measured with: connect
// (both dialers) and idle with subscriptions, every connection established.
func TestFloorServesConnectAndIdle(t *testing.T) {
	url := startTestFloor(t)
	for _, rd := range readers() {
		res, err := Run(context.Background(), Options{Scenario: ScenarioConnect, URL: url, Reader: rd, Conns: 300, Timeout: time.Minute})
		if err != nil || !res.Complete || res.Connections.Established != 300 || res.Connections.Failed != 0 {
			t.Fatalf("connect, %s reader: err %v, %+v, errors %v", rd, err, res.Connections, res.Errors)
		}
	}
	res, err := Run(context.Background(), Options{Scenario: ScenarioIdle, URL: url, Conns: 50, Subscribe: true,
		Duration: 100 * time.Millisecond, PID: os.Getpid(), Timeout: time.Minute})
	if err != nil || !res.Complete || res.Idle.Alive != 50 {
		t.Fatalf("idle: err %v, %+v, errors %v", err, res.Idle, res.Errors)
	}
}

// A client split across reads (head and frames a few bytes at a time) is
// served as one sent whole; ping, subscribe and close are answered.
func TestFloorAnswersInPieces(t *testing.T) {
	url := startTestFloor(t)
	c, err := net.Dial("tcp", url[len("ws://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	out.WriteString("GET /app/key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	for _, msg := range []string{`{"event":"pusher:ping","data":{}}`, `{"event":"pusher:subscribe","data":{"channel":"news"}}`} {
		wsutil.WriteClientText(&out, []byte(msg))
	}
	b := out.Bytes()
	for i := 0; i < len(b); i += 7 {
		if _, err := c.Write(b[i:min(i+7, len(b))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	head := make([]byte, 0, 256)
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("response head %q: %v", head, err)
		}
		head = append(head, one[0])
	}
	// RFC 6455's example key and its answer.
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) || !bytes.Contains(head, []byte("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")) {
		t.Fatalf("response head %q", head)
	}
	for _, want := range []string{`"pusher:connection_established"`, `"pusher:pong"`, `"pusher_internal:subscription_succeeded","channel":"news"`} {
		msg, op, err := wsutil.ReadServerData(c)
		if err != nil || op != ws.OpText || !bytes.Contains(msg, []byte(want)) {
			t.Fatalf("want %s: got %q (op %v), %v", want, msg, op, err)
		}
	}
	if err := wsutil.WriteClientMessage(c, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	if _, op, err := wsutil.ReadServerData(c); err == nil || op == ws.OpText {
		// ReadServerData reports the close frame as an error.
		t.Fatalf("after close: op %v, err %v", op, err)
	}
}

// A request without a key, or a head that never ends, is dropped.
func TestFloorDropsBadRequests(t *testing.T) {
	url := startTestFloor(t)
	for name, req := range map[string][]byte{
		"no key":    []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"long head": bytes.Repeat([]byte("X-A: b\r\n"), 4<<10),
	} {
		c, err := net.Dial("tcp", url[len("ws://"):])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(req)
		if n, err := c.Read(make([]byte, 64)); err == nil {
			t.Errorf("%s: answered %d bytes", name, n)
		}
		c.Close()
	}
}

func FuzzClientFrame(f *testing.F) {
	var b bytes.Buffer
	wsutil.WriteClientText(&b, []byte(`{"event":"pusher:ping","data":{}}`))
	f.Add(b.Bytes())
	f.Add([]byte{0x81, 0xFE, 0, 200})
	f.Add([]byte{0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := bytes.Clone(data)
		op, payload, n := clientFrame(data)
		if n < 0 || n > len(data) || len(payload) > n {
			t.Fatalf("n %d of %d bytes, payload %d", n, len(data), len(payload))
		}
		if n == 0 {
			return
		}
		// What gobwas/ws reads from the same bytes must agree.
		fr, err := ws.ReadFrame(bytes.NewReader(whole))
		if err != nil {
			return
		}
		if fr.Header.Masked {
			ws.Cipher(fr.Payload, fr.Header.Mask, 0)
		}
		if byte(fr.Header.OpCode) != op || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("op %d payload %q, gobwas/ws: op %d payload %q", op, payload, fr.Header.OpCode, fr.Payload)
		}
	})
}
