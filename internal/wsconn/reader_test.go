package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	n := len(payload)
	switch {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, mask[:]...)
	for i, c := range payload {
		out = append(out, c^mask[i%4])
	}
	return out
}

type recordSink struct{ events []string }

func (s *recordSink) message(d []byte) { s.events = append(s.events, "msg:"+string(d)) }
func (s *recordSink) tooLarge(n int)   { s.events = append(s.events, fmt.Sprintf("toolarge:%d", n)) }
func (s *recordSink) control(op byte, p []byte) {
	s.events = append(s.events, fmt.Sprintf("ctl%d:%s", op, p))
}

// feedInChunks feeds stream in pieces of size chunk and returns what the
// sink saw.
func feedInChunks(t *testing.T, stream []byte, chunk, max int) ([]string, error) {
	t.Helper()
	r := frameReader{max: max}
	s := &recordSink{}
	for i := 0; i < len(stream); i += chunk {
		end := min(i+chunk, len(stream))
		piece := append([]byte(nil), stream[i:end]...) // the reader may unmask in place
		if err := r.feed(piece, s); err != nil {
			return s.events, err
		}
	}
	if len(r.carry) != 0 {
		t.Errorf("%d bytes left carried after a complete stream", len(r.carry))
	}
	return s.events, nil
}

func TestFrameReaderAnyChunking(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 300)
	var stream []byte
	stream = append(stream, clientFrame(true, opText, []byte(`{"event":"one"}`))...)
	stream = append(stream, clientFrame(false, opText, []byte("frag-"))...)
	stream = append(stream, clientFrame(true, opPing, []byte("p"))...) // control inside a fragmented message
	stream = append(stream, clientFrame(true, opContinuation, []byte("ment"))...)
	stream = append(stream, clientFrame(true, opBinary, big)...)
	stream = append(stream, clientFrame(true, opText, nil)...)
	want := []string{`msg:{"event":"one"}`, "ctl9:p", "msg:frag-ment", "msg:" + string(big), "msg:"}
	for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
		got, err := feedInChunks(t, stream, chunk, 1024)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d:\n got %q\nwant %q", chunk, got, want)
		}
	}
}

func TestFrameReaderDiscardsOversizedAndContinues(t *testing.T) {
	var stream []byte
	stream = append(stream, clientFrame(true, opText, bytes.Repeat([]byte("x"), 5000))...)
	stream = append(stream, clientFrame(false, opText, bytes.Repeat([]byte("y"), 60))...)
	stream = append(stream, clientFrame(true, opContinuation, bytes.Repeat([]byte("z"), 60))...)
	stream = append(stream, clientFrame(true, opText, []byte("after"))...)
	want := []string{"toolarge:5000", "toolarge:120", "msg:after"}
	for _, chunk := range []int{1, 5, 100, 1 << 20} {
		got, err := feedInChunks(t, stream, chunk, 100)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d: got %q want %q", chunk, got, want)
		}
	}
}

func TestFrameReaderRefusesViolations(t *testing.T) {
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	rsv := clientFrame(true, opText, []byte("x"))
	rsv[0] |= 0x40
	longPing := clientFrame(true, opPing, bytes.Repeat([]byte("p"), 126))
	fragPing := clientFrame(false, opPing, nil)
	cases := map[string][]byte{
		"unmasked":               unmasked,
		"reserved bits":          rsv,
		"long control":           longPing,
		"fragmented control":     fragPing,
		"orphan continuation":    clientFrame(true, opContinuation, []byte("x")),
		"text inside fragments":  append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...),
		"unknown opcode":         clientFrame(true, 0x3, nil),
		"unknown control opcode": clientFrame(true, 0xB, nil),
	}
	for name, stream := range cases {
		if _, err := feedInChunks(t, stream, 1<<20, 1024); !errors.Is(err, errProtocol) {
			t.Errorf("%s: err = %v, want a protocol error", name, err)
		}
	}
}

func TestFrameReaderKeepsNoBufferWhenIdle(t *testing.T) {
	r := frameReader{max: 1024}
	s := &recordSink{}
	r.feed(clientFrame(true, opText, []byte("hello")), s)
	if r.carry != nil || len(r.msg) != 0 {
		t.Fatalf("idle reader holds carry=%d msg=%d bytes", len(r.carry), len(r.msg))
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"event":"pusher:ping"}`)), 3)
	f.Add(append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...), 1)
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 2)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk <= 0 || chunk > len(stream)+1 {
			chunk = len(stream) + 1
		}
		r := frameReader{max: 256}
		s := &recordSink{}
		for i := 0; i < len(stream); i += chunk {
			if err := r.feed(append([]byte(nil), stream[i:min(i+chunk, len(stream))]...), s); err != nil {
				return
			}
		}
		for _, e := range s.events {
			if len(e) > 4+256 && e[:4] == "msg:" {
				t.Fatalf("message over the limit delivered: %d bytes", len(e)-4)
			}
		}
	})
}
