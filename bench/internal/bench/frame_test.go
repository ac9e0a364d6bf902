package bench

import (
	"bytes"
	"net"
	"testing"
	"time"
)

func TestClientFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		for i := range payload {
			payload[i] = byte(i)
		}
		b := appendClientFrame(nil, opText, payload)
		if b[1]&0x80 == 0 {
			t.Fatalf("%d bytes: client frame not masked", n)
		}
		if frameLen(b) != len(b) {
			t.Errorf("%d bytes: frameLen %d, frame is %d", n, frameLen(b), len(b))
		}
		// Every proper prefix is incomplete.
		for _, cut := range []int{0, 1, 2, 3, 9, len(b) - 1} {
			if cut >= len(b) {
				continue
			}
			if _, used, err := nextFrame(b[:cut], 1<<20); used != 0 || err != nil {
				t.Fatalf("%d bytes cut at %d: used %d err %v", n, cut, used, err)
			}
		}
		f, used, err := nextFrame(append(b, 0x81), 1<<20) // and a trailing byte of the next frame
		if err != nil || used != len(b) || !f.fin || f.op != opText || !bytes.Equal(f.payload, payload) {
			t.Fatalf("%d bytes: used %d of %d, err %v, fin %v op %d, payload equal %v",
				n, used, len(b), err, f.fin, f.op, bytes.Equal(f.payload, payload))
		}
	}
}

func TestServerFrames(t *testing.T) {
	// Unmasked, as servers send them.
	b := []byte{0x81, 5, 'h', 'e', 'l', 'l', 'o', 0x89, 0, 0x88, 2, 0x10, 0x04}
	f, n, err := nextFrame(b, 100)
	if err != nil || n != 7 || string(f.payload) != "hello" {
		t.Fatalf("text: %v %d %q", err, n, f.payload)
	}
	f, n2, _ := nextFrame(b[n:], 100)
	if f.op != opPing || n2 != 2 || len(f.payload) != 0 {
		t.Fatalf("ping: op %d n %d", f.op, n2)
	}
	f, _, _ = nextFrame(b[n+n2:], 100)
	if f.op != opClose || closeCode(f.payload) != 4100 {
		t.Fatalf("close: op %d code %d", f.op, closeCode(f.payload))
	}
	if closeCode(nil) != 1005 {
		t.Error("empty close payload should be 1005")
	}
	if _, _, err := nextFrame([]byte{0x81, 126, 0xFF, 0xFF}, 1000); err != errFrameTooLarge {
		t.Errorf("oversized frame: %v", err)
	}
}

// writeConn records what a connection writes; nothing else is called.
type writeConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *writeConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *writeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *writeConn) Close() error                     { return nil }

func TestPingsAreAnswered(t *testing.T) {
	wc := &writeConn{}
	c := &conn{nc: wc, fd: -1, sk: nopSink{}}
	in := []byte{0x89, 3, 'a', 'b', 'c'} // WebSocket ping
	in = append(in, 0x81, byte(len(`{"event":"pusher:ping","data":{}}`)))
	in = append(in, `{"event":"pusher:ping","data":{}}`...) // Pusher ping
	sh := new(shard)
	if err := c.feed(in, 0, sh); err != nil {
		t.Fatal(err)
	}
	out := wc.out.Bytes()
	f, n, err := nextFrame(out, 1000)
	if err != nil || f.op != opPong || string(f.payload) != "abc" {
		t.Fatalf("first reply: op %d payload %q err %v", f.op, f.payload, err)
	}
	f, _, err = nextFrame(out[n:], 1000)
	if err != nil || f.op != opText || string(f.payload) != string(pongMessage) {
		t.Fatalf("second reply: op %d payload %q err %v", f.op, f.payload, err)
	}
	if sh.pongsSent.Load() != 2 {
		t.Errorf("pongs counted %d", sh.pongsSent.Load())
	}
}

// TestFeedSplitsAnywhere feeds a stream of server frames cut at every
// possible place and checks that the connection sees the same messages.
func TestFeedSplitsAnywhere(t *testing.T) {
	var stream []byte
	add := func(op byte, fin bool, p []byte) {
		h := op
		if fin {
			h |= 0x80
		}
		stream = append(stream, h)
		switch {
		case len(p) < 126:
			stream = append(stream, byte(len(p)))
		default:
			stream = append(stream, 126, byte(len(p)>>8), byte(len(p)))
		}
		stream = append(stream, p...)
	}
	add(opText, true, []byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`))
	add(opText, true, []byte(`{"event":"pusher_internal:subscription_succeeded","channel":"hb-x-fanout","data":"{}"}`))
	for seq := range uint32(20) {
		data := AppendData(nil, Mark{Stream: seq % 2, Seq: seq / 2, TS: 1}, 50+int(seq)*20)
		msg := pusherFrame(EventName, "hb-x-fanout", data)
		if seq == 7 { // one message in three fragments
			add(opText, false, msg[:10])
			add(opContinuation, false, msg[10:20])
			add(opContinuation, true, msg[20:])
			continue
		}
		add(opText, true, msg)
	}
	add(opClose, true, []byte{0x10, 0x04})

	for cut := 1; cut < len(stream); cut += 1 {
		c := &conn{sk: &streamSink{perConn: 1, streams: 2, prefix: "hb-x-"}, streams: make([]Stream, 2), nc: nil, fd: -1}
		sh := new(shard)
		var err error
		for off := 0; off < len(stream) && err == nil; off += cut {
			chunk := append([]byte(nil), stream[off:min(off+cut, len(stream))]...)
			err = c.feed(chunk, 2, sh)
		}
		if err != errClosedByServer || c.closeCode.Load() != 4100 {
			t.Fatalf("cut %d: err %v, close code %d", cut, err, c.closeCode.Load())
		}
		if c.socketID != "1.2" || c.subscribed != 1 {
			t.Fatalf("cut %d: socket id %q, subscribed %d", cut, c.socketID, c.subscribed)
		}
		if want := (Counts{Received: 20, Unique: 20}); c.counts != want {
			t.Fatalf("cut %d: counts %+v", cut, c.counts)
		}
		if sh.lat.Count() != 20 || sh.unique.Load() != 20 {
			t.Fatalf("cut %d: latency samples %d unique %d", cut, sh.lat.Count(), sh.unique.Load())
		}
	}
}
