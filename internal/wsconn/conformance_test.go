package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// recordHandler keeps what a connection's Handler saw.
type recordHandler struct {
	mu     sync.Mutex
	msgs   []string
	closed chan error
}

func newRecordHandler() *recordHandler { return &recordHandler{closed: make(chan error, 1)} }

func (h *recordHandler) HandleMessage(d []byte) {
	h.mu.Lock()
	h.msgs = append(h.msgs, string(d))
	h.mu.Unlock()
}
func (h *recordHandler) HandleClose(err error) { h.closed <- err }

func (h *recordHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

// rawDial upgrades a raw TCP connection to the server at addr, by one of
// the two paths a connection arrives by: through net/http (Upgrade) or
// from a head read off the socket (UpgradeRaw).
func startTransport(t *testing.T, cfg Config, raw bool) (dial func() (net.Conn, *bufio.Reader, *recordHandler)) {
	t.Helper()
	up, err := NewUpgrader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	handlers := make(chan *recordHandler, 1)
	serve := func(c Conn) {
		h := newRecordHandler()
		handlers <- h
		c.Start(h)
	}
	var addr string
	if raw {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		addr = ln.Addr().String()
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				br := bufio.NewReader(nc)
				var head []byte
				for HeadEnd(head) < 0 {
					line, err := br.ReadSlice('\n')
					if err != nil {
						nc.Close()
						return
					}
					head = append(head, line...)
				}
				req, ok := ParseUpgrade(head)
				if !ok {
					t.Errorf("ParseUpgrade refused %q", head)
					nc.Close()
					return
				}
				early, _ := br.Peek(br.Buffered())
				c, err := up.UpgradeRaw(nc, &req, early)
				if err != nil {
					t.Error(err)
					return
				}
				serve(c)
			}
		}()
	} else {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				t.Error(err)
				return
			}
			serve(c)
		}))
		t.Cleanup(srv.Close)
		addr = strings.TrimPrefix(srv.URL, "http://")
	}
	return func() (net.Conn, *bufio.Reader, *recordHandler) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		nc, br, _, err := ws.Dial(ctx, "ws://"+addr+"/app/conformance")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		if br == nil {
			br = bufio.NewReader(nc)
		}
		select {
		case h := <-handlers:
			return nc, br, h
		case <-time.After(5 * time.Second):
			t.Fatal("no connection")
			return nil, nil, nil
		}
	}
}

// serverFrames reads server frames until the server ends the connection,
// and describes them: "text:…", "pong:…", "close:code:reason". It fails the
// test if the server keeps the socket open past within.
func serverFrames(t *testing.T, nc net.Conn, br *bufio.Reader, within time.Duration) []string {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(within))
	var got []string
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return got
			}
			t.Fatalf("after %q: %v (the server did not end the connection in %v)", got, err, within)
		}
		if h.Masked {
			t.Fatalf("server frame masked")
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("payload: %v", err)
		}
		switch h.OpCode {
		case ws.OpText:
			got = append(got, "text:"+string(p))
		case ws.OpPong:
			got = append(got, "pong:"+string(p))
		case ws.OpClose:
			code := -1
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			got = append(got, fmt.Sprintf("close:%d", code))
		default:
			got = append(got, fmt.Sprintf("op%d:%s", h.OpCode, p))
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// conformanceCase is one RFC 6455 rule: what a client sends, what the
// Handler must receive, what the client must get back before the server
// ends the connection, and how HandleClose is told.
type conformanceCase struct {
	name    string
	send    []byte
	msgs    []string // delivered to the Handler
	frames  []string // sent back, in order, ending with the close frame
	closeIs error    // what HandleClose's error must wrap; nil: io.EOF
}

func conformanceCases() []conformanceCase {
	b := func(s string) []byte { return []byte(s) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	text := func(s string) []byte { return clientFrame(true, opText, b(s)) }
	closeWith := func(code int, reason string) []byte { return clientFrame(true, opClose, closePayload(code, reason)) }
	bye := closeWith(1000, "")
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	rsv := text("x")
	rsv[0] |= 0x40
	cases := []conformanceCase{
		{name: "text then close", send: cat(text("hello"), bye), msgs: []string{"hello"}, frames: []string{"close:1000"}},
		{name: "binary", send: cat(clientFrame(true, opBinary, b("\xC3\x28\xFF")), bye), msgs: []string{"\xC3\x28\xFF"}, frames: []string{"close:1000"}},
		{name: "empty text", send: cat(text(""), bye), msgs: []string{""}, frames: []string{"close:1000"}},
		{name: "fragments with a ping between", send: cat(clientFrame(false, opText, b("frag")), clientFrame(true, opPing, b("p1")),
			clientFrame(true, opContinuation, b("ment")), bye), msgs: []string{"fragment"}, frames: []string{"pong:p1", "close:1000"}},
		{name: "ping", send: cat(clientFrame(true, opPing, b("hello")), bye), frames: []string{"pong:hello", "close:1000"}},
		{name: "ping of 125 bytes", send: cat(clientFrame(true, opPing, bytes.Repeat(b("p"), 125)), bye), frames: []string{"pong:" + strings.Repeat("p", 125), "close:1000"}},
		{name: "unsolicited pong", send: cat(clientFrame(true, opPong, b("x")), text("after"), bye), msgs: []string{"after"}, frames: []string{"close:1000"}},
		{name: "multi-byte split across fragments", send: cat(clientFrame(false, opText, b("\xE2")), clientFrame(false, opContinuation, b("\x82")),
			clientFrame(true, opContinuation, b("\xAC")), bye), msgs: []string{"€"}, frames: []string{"close:1000"}},
		{name: "empty close", send: clientFrame(true, opClose, nil), frames: []string{"close:1000"}},
		{name: "close with a reason", send: closeWith(1001, "going ✓"), frames: []string{"close:1001"}},
		{name: "nothing after close is handled", send: cat(bye, text("late")), frames: []string{"close:1000"}},

		{name: "unmasked", send: cat(unmasked, bye), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "reserved bits", send: rsv, frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "opcode 3", send: cat(clientFrame(true, 0x3, nil), text("after")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "control opcode 11 then text", send: cat(clientFrame(true, 0xB, nil), text("after")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "fragmented ping", send: clientFrame(false, opPing, b("p")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "ping of 126 bytes", send: clientFrame(true, opPing, bytes.Repeat(b("p"), 126)), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "orphan continuation", send: clientFrame(true, opContinuation, b("x")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "text inside a fragmented message", send: cat(clientFrame(false, opText, b("a")), text("b")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "close of one byte", send: clientFrame(true, opClose, b("\x03")), frames: []string{"close:1002"}, closeIs: ErrProtocol},
		{name: "length with its top bit set", send: []byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, frames: []string{"close:1002"}, closeIs: ErrProtocol},

		{name: "invalid UTF-8 text", send: cat(text(`{"event":"client-x","data":"`+"\xC3\x28\xFF"+`"}`), text("after")), frames: []string{"close:1007"}, closeIs: ErrInvalidUTF8},
		{name: "invalid UTF-8 in a fragment", send: cat(clientFrame(false, opText, b("ok")), clientFrame(false, opContinuation, b("\xED\xA0\x80"))),
			frames: []string{"close:1007"}, closeIs: ErrInvalidUTF8},
		{name: "text ending inside a character", send: cat(clientFrame(false, opText, b("ok")), clientFrame(true, opContinuation, b("\xE2\x82"))),
			frames: []string{"close:1007"}, closeIs: ErrInvalidUTF8},
		{name: "close reason of invalid UTF-8", send: closeWith(1000, "\xC3\x28"), frames: []string{"close:1007"}, closeIs: ErrInvalidUTF8},

		{name: "message over the limit", send: clientFrame(true, opText, bytes.Repeat(b("x"), 1025))[:8], frames: []string{"close:1009"}, closeIs: ErrTooLarge},
		{name: "fragments over the limit", send: cat(clientFrame(false, opBinary, bytes.Repeat(b("x"), 1000)), clientFrame(true, opContinuation, bytes.Repeat(b("x"), 25))[:6]),
			frames: []string{"close:1009"}, closeIs: ErrTooLarge},
		{name: "length 2^62", send: []byte{0x81, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, frames: []string{"close:1009"}, closeIs: ErrTooLarge},
		{name: "length 2^63-1", send: []byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}, frames: []string{"close:1009"}, closeIs: ErrTooLarge},
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, conformanceCase{name: fmt.Sprintf("close %d echoed", code), send: closeWith(code, "r"), frames: []string{fmt.Sprintf("close:%d", code)}})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 2999, 5000, 65535} {
		cases = append(cases, conformanceCase{name: fmt.Sprintf("close %d refused", code), send: closeWith(code, ""), frames: []string{"close:1002"}, closeIs: ErrProtocol})
	}
	return cases
}

// TestConformance runs every case against both transports and both
// upgrade paths: they must behave the same for every framing rule. The
// server answers, then ends the connection itself, well before the grace
// it gives a client that has not yet closed.
func TestConformance(t *testing.T) {
	for _, tr := range transports() {
		for _, raw := range []bool{false, true} {
			path := "net/http"
			if raw {
				path = "raw"
			}
			t.Run(tr+"/"+path, func(t *testing.T) {
				dial := startTransport(t, Config{Transport: tr, Pollers: 1, MaxMessageBytes: 1024}, raw)
				for _, c := range conformanceCases() {
					for _, chunked := range []bool{false, true} {
						nc, br, h := dial()
						if chunked {
							// Byte by byte, so that every frame straddles reads.
							for i := range c.send {
								nc.Write(c.send[i : i+1])
								time.Sleep(50 * time.Microsecond)
							}
						} else {
							nc.Write(c.send)
						}
						got := serverFrames(t, nc, br, closeGrace/2)
						if fmt.Sprint(got) != fmt.Sprint(c.frames) {
							t.Errorf("%s (chunked %v): client got %q, want %q", c.name, chunked, got, c.frames)
						}
						var err error
						select {
						case err = <-h.closed:
						case <-time.After(5 * time.Second):
							t.Fatalf("%s: no HandleClose", c.name)
						}
						if c.closeIs == nil && err != nil && !errors.Is(err, io.EOF) || c.closeIs != nil && !errors.Is(err, c.closeIs) {
							t.Errorf("%s: HandleClose(%v), want %v", c.name, err, c.closeIs)
						}
						if m := h.messages(); fmt.Sprint(m) != fmt.Sprint(c.msgs) {
							t.Errorf("%s: handler got %q, want %q", c.name, m, c.msgs)
						}
						nc.Close()
					}
				}
			})
		}
	}
}

// A client that floods pings without reading gets one pending pong, not one
// per ping: the server holds a bounded amount for it however long the
// flood, and the pong it does send answers the latest ping.
func TestPingFloodIsBounded(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			dial := startTransport(t, Config{Transport: tr, Pollers: 1, MaxQueueBytes: 64 << 10}, false)
			nc, br, _ := dial()
			const pings = 400_000 // 60 MiB; a pong for each would hold 50 MiB
			ping := func(seq int) []byte {
				p := bytes.Repeat([]byte("p"), 125)
				copy(p, fmt.Sprintf("%08d", seq))
				return clientFrame(true, opPing, p)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var batch []byte
			for seq := 1; seq <= pings; seq++ {
				batch = append(batch, ping(seq)...)
				if len(batch) >= 64<<10 || seq == pings {
					nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if _, err := nc.Write(batch); err != nil {
						t.Fatalf("ping %d: %v (the server stopped reading)", seq, err)
					}
					batch = batch[:0]
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			grew := int64(after.HeapInuse) - int64(before.HeapInuse)
			if grew > 8<<20 {
				t.Errorf("heap grew %d KiB under a flood of %d pings", grew>>10, pings)
			}
			// Now read: the pongs that come are few, and the last one
			// answers the last ping.
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			pongs := 0
			for {
				h, err := ws.ReadHeader(br)
				if err != nil {
					t.Fatalf("after %d pongs: %v", pongs, err)
				}
				p := make([]byte, h.Length)
				if _, err := io.ReadFull(br, p); err != nil {
					t.Fatal(err)
				}
				if h.OpCode != ws.OpPong {
					t.Fatalf("frame op %d", h.OpCode)
				}
				pongs++
				if string(p[:8]) == fmt.Sprintf("%08d", pings) {
					break
				}
			}
			t.Logf("%d pings answered by %d pongs; heap grew %d KiB", pings, pongs, grew>>10)
			if pongs > pings/4 {
				t.Errorf("%d pongs for %d pings: not coalesced", pongs, pings)
			}
		})
	}
}
