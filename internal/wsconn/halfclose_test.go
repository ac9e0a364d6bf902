package wsconn

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client may send its close frame and then shut down its side of the
// socket at once, reading on: it still gets the server's close frame, the
// end of the closing handshake, rather than a bare FIN (which its
// WebSocket library reports as an abnormal closure, 1006).
func TestCloseThenHalfCloseGetsTheCloseFrame(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			dial := startTransport(t, Config{Transport: tr, Pollers: 1}, false)
			for i := range 50 {
				nc, br, h := dial()
				nc.Write(clientFrame(true, opClose, closePayload(1000, "bye")))
				nc.(*net.TCPConn).CloseWrite()
				got := serverFrames(t, nc, br, closeGrace/2)
				if fmt.Sprint(got) != "[close:1000]" {
					t.Fatalf("attempt %d: client got %q, want the close frame", i, got)
				}
				select {
				case <-h.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("no HandleClose")
				}
				nc.Close()
			}
		})
	}
}

// A client may send its handshake, its frames and its FIN in one go, and
// the server read them all before the connection starts: the frames that
// came with the handshake are still handled, and the close frame among them
// answered, though the socket is at its end when the connection starts.
func TestFramesWithTheHandshakeBeforeAFIN(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			up, err := NewUpgrader(Config{Transport: tr, Pollers: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(up.Close)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			handlers := make(chan *recordHandler, 1)
			go func() {
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					// Everything the client sent, up to its FIN.
					all, _ := io.ReadAll(nc)
					end := HeadEnd(all)
					req, ok := ParseUpgrade(all[:max(end, 0)])
					if !ok {
						t.Errorf("ParseUpgrade refused %q", all)
						nc.Close()
						return
					}
					c, err := up.UpgradeRaw(nc, &req, all[end:])
					if err != nil {
						t.Error(err)
						return
					}
					h := newRecordHandler()
					handlers <- h
					c.Start(h)
				}
			}()
			for i := range 20 {
				nc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				var send []byte
				send = append(send, upgradeHead(validHead()...)...)
				send = append(send, clientFrame(true, opText, []byte("hello"))...)
				send = append(send, clientFrame(true, opClose, closePayload(1000, ""))...)
				nc.Write(send)
				nc.(*net.TCPConn).CloseWrite()
				br := bufio.NewReader(nc)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("attempt %d: %v %v", i, resp, err)
				}
				got := serverFrames(t, nc, br, closeGrace/2)
				if fmt.Sprint(got) != "[close:1000]" {
					t.Fatalf("attempt %d: client got %q, want the close frame", i, got)
				}
				var h *recordHandler
				select {
				case h = <-handlers:
				case <-time.After(5 * time.Second):
					t.Fatal("no connection")
				}
				select {
				case <-h.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("no HandleClose")
				}
				if m := h.messages(); fmt.Sprint(m) != "[hello]" {
					t.Fatalf("attempt %d: handler got %q, want [hello]", i, m)
				}
				nc.Close()
			}
		})
	}
}

// The same with the server's socket full: the close frame waits behind
// what is queued, and the client, reading at last, gets all of it and then
// the close frame.
func TestCloseThenHalfCloseBehindAFullSocket(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			c, nc, br := serveOne(t, Config{Transport: tr, Pollers: 1, MaxQueueBytes: 256 << 10, WriteTimeout: 5 * time.Second})
			// Until the kernel's buffers are full too, and the queue is.
			sent := 0
			for ; ; sent++ {
				if err := c.Send(numberedPayload(sent, 4<<10)); err != nil {
					time.Sleep(20 * time.Millisecond)
					if err = c.Send(numberedPayload(sent, 4<<10)); err != nil {
						break
					}
				}
			}
			nc.Write(clientFrame(true, opClose, closePayload(1000, "")))
			nc.(*net.TCPConn).CloseWrite()
			time.Sleep(300 * time.Millisecond)
			got := serverFrames(t, nc, br, 5*time.Second)
			if len(got) == 0 || got[len(got)-1] != "close:1000" {
				t.Fatalf("client got %d frames, the last %q; want the close frame last", len(got), got[max(len(got)-1, 0):])
			}
			if len(got)-1 < sent {
				t.Fatalf("client got %d of the %d messages queued before its close", len(got)-1, sent)
			}
		})
	}
}
