package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// wantHeader is the header RFC 6455 §5.2 prescribes for a final, unmasked
// text frame of n payload bytes, written out by hand.
func wantHeader(n int) []byte {
	switch {
	case n < 126:
		return []byte{0x81, byte(n)}
	case n <= 0xFFFF:
		return []byte{0x81, 126, byte(n >> 8), byte(n)}
	default:
		return []byte{0x81, 127, 0, 0, 0, byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// boundaries are the payload lengths at which the length encoding changes.
var boundaries = []int{0, 1, 125, 126, 127, 65535, 65536, 200_000}

func TestTextFrameHeader(t *testing.T) {
	for _, n := range boundaries {
		f := textFrame(make([]byte, n))
		got := f.hdr[:f.hlen]
		if !bytes.Equal(got, wantHeader(n)) {
			t.Errorf("%d bytes: header % x, want % x", n, got, wantHeader(n))
		}
		var lib bytes.Buffer
		ws.WriteHeader(&lib, ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(n)})
		if !bytes.Equal(got, lib.Bytes()) {
			t.Errorf("%d bytes: header % x, the WebSocket library writes % x", n, got, lib.Bytes())
		}
		if f.size() != len(got)+n {
			t.Errorf("%d bytes: size %d, want %d", n, f.size(), len(got)+n)
		}
	}
}

// rawUpgrade upgrades the server end of a fresh loopback connection with
// UpgradeRaw, as if the client had sent the test's request head, and
// returns the server's connection, not yet started, and the client's end.
func rawUpgrade(t *testing.T, up *Upgrader) (Conn, net.Conn) {
	t.Helper()
	client, server := tcpPair(t)
	req, ok := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	if !ok {
		t.Fatal("refused")
	}
	c, err := up.UpgradeRaw(server, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, client
}

func newUpgrader(t *testing.T, cfg Config) *Upgrader {
	t.Helper()
	up, err := NewUpgrader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return up
}

// patterned is n bytes of text that differ between messages.
func patterned(seed, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte('a' + (seed+i)%26)
	}
	return p
}

// TestSharedPayloadWrittenAsIs: one payload sent to many connections
// reaches each client unmodified, behind the header its length calls for,
// and is neither copied nor touched by the transport. Half the messages are
// sent before Start, so that on the epoll transport they leave with the 101
// response in the connection's first write.
func TestSharedPayloadWrittenAsIs(t *testing.T) {
	const conns = 40
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			up := newUpgrader(t, Config{Transport: tr, Pollers: 2, MaxQueueBytes: 4 << 20})
			payloads := make([][]byte, len(boundaries))
			for i, n := range boundaries {
				payloads[i] = patterned(i, n)
			}
			// What the clients must read: the first payload is changed
			// after it is sent but before anything is written (Start has
			// not run), which only shows on the wire if Send kept the
			// caller's bytes rather than a copy.
			want := make([][]byte, len(payloads))
			for i, p := range payloads {
				want[i] = bytes.Clone(p)
			}
			const late = 'Z'
			want[1][0] = late

			servers := make([]Conn, conns)
			clients := make([]net.Conn, conns)
			for k := range conns {
				servers[k], clients[k] = rawUpgrade(t, up)
				for _, p := range payloads[:len(payloads)/2] {
					if err := servers[k].Send(p); err != nil {
						t.Fatal(err)
					}
				}
			}
			payloads[1][0] = late
			for _, c := range servers {
				c.Start(nopHandler{})
			}
			for _, p := range payloads[len(payloads)/2:] {
				for _, c := range servers {
					if err := c.Send(p); err != nil {
						t.Fatal(err)
					}
				}
			}

			var wg sync.WaitGroup
			for k, nc := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := readExactly(nc, want); err != nil {
						t.Errorf("client %d: %v", k, err)
					}
				}()
			}
			wg.Wait()
			for i, p := range payloads {
				if !bytes.Equal(p, want[i]) {
					t.Errorf("payload %d (%d bytes) was modified", i, len(p))
				}
			}
		})
	}
}

// readExactly reads the 101 response and then exactly one text frame per
// payload, each with the header wantHeader gives.
func readExactly(nc net.Conn, payloads [][]byte) error {
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("response %v, %v", resp, err)
	}
	for i, p := range payloads {
		h := make([]byte, len(wantHeader(len(p))))
		if _, err := io.ReadFull(br, h); err != nil {
			return fmt.Errorf("message %d: header: %v", i, err)
		}
		if !bytes.Equal(h, wantHeader(len(p))) {
			return fmt.Errorf("message %d: header % x, want % x", i, h, wantHeader(len(p)))
		}
		got := make([]byte, len(p))
		if _, err := io.ReadFull(br, got); err != nil {
			return fmt.Errorf("message %d: payload: %v", i, err)
		}
		if !bytes.Equal(got, p) {
			return fmt.Errorf("message %d: payload of %d bytes differs", i, len(p))
		}
	}
	return nil
}

// TestQueueLimitCountsHeaders: MaxQueueBytes bounds what goes on the wire,
// so a message costs its header as well as its payload. The connections are
// not started, so nothing leaves the queue.
func TestQueueLimitCountsHeaders(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			base := 0
			if tr == TransportEpoll {
				base = responseLen // queued until the first flush
			}
			for _, n := range []int{10, 125, 126, 65536} {
				cost := len(wantHeader(n)) + n
				p := make([]byte, n)
				for _, slack := range []int{0, -1} {
					limit := base + 2*cost + slack
					up := newUpgrader(t, Config{Transport: tr, Pollers: 1, MaxQueueBytes: limit})
					c, _ := rawUpgrade(t, up)
					if err := c.Send(p); err != nil {
						t.Fatalf("%d bytes, limit %d: first send: %v", n, limit, err)
					}
					err := c.Send(p)
					switch {
					case slack == 0 && err != nil:
						t.Fatalf("%d bytes, limit %d: second send: %v", n, limit, err)
					case slack < 0 && !errors.Is(err, ErrQueueFull):
						t.Fatalf("%d bytes, limit %d, a byte short of two headers and payloads: second send %v, want ErrQueueFull", n, limit, err)
					}
					if err := c.Send(nil); slack == 0 && !errors.Is(err, ErrQueueFull) {
						t.Fatalf("%d bytes, limit %d: an empty message, which costs its header, was queued: %v", n, limit, err)
					}
					c.Abort(CloseGoingAway, "")
					c.Start(nopHandler{})
				}
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestBytesWritten: the Upgrader's count is every byte a client reads,
// 101 response, headers, payloads and control frames included.
func TestBytesWritten(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			up := newUpgrader(t, Config{Transport: tr, Pollers: 2})
			c, nc := rawUpgrade(t, up)
			want := responseLen
			send := func(n int) {
				t.Helper()
				if err := c.Send(patterned(n, n)); err != nil {
					t.Fatal(err)
				}
				want += len(wantHeader(n)) + n
			}
			send(100)
			h := newChanHandler()
			c.Start(h)
			for _, n := range boundaries {
				send(n)
			}
			// A pong is the transport's own.
			ping := []byte("are you there")
			nc.Write(clientFrame(true, opPing, ping))
			want += 2 + len(ping)

			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			cr := &countingReader{r: nc}
			br := bufio.NewReader(cr)
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("response %v, %v", resp, err)
			}
			for {
				hdr, err := ws.ReadHeader(br)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.CopyN(io.Discard, br, hdr.Length); err != nil {
					t.Fatal(err)
				}
				if hdr.OpCode == ws.OpPong {
					break
				}
			}
			const reason = "bye"
			c.Close(CloseNormal, reason)
			want += 2 + 2 + len(reason)
			// The server half-closes once the close frame is written.
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatal(err)
			}
			if got := cr.n.Load(); got != int64(want) {
				t.Fatalf("client read %d bytes, want %d", got, want)
			}
			deadline := time.Now().Add(2 * time.Second)
			for up.BytesWritten() != uint64(want) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := up.BytesWritten(); got != uint64(want) {
				t.Fatalf("BytesWritten %d, client read %d", got, want)
			}
			nc.Close()
			h.expectClosed(t)
		})
	}
}

// An entry of the send queue stays the size of a slice: see outFrame.
func TestOutFrameSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("a 64-bit layout")
	}
	if n := unsafe.Sizeof(outFrame{}); n != unsafe.Sizeof([]byte(nil)) {
		t.Fatalf("outFrame is %d bytes, want %d", n, unsafe.Sizeof([]byte(nil)))
	}
}
