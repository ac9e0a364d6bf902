package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
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

// closePayload is a close frame's payload: code and reason.
func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

type recordSink struct{ events []string }

func (s *recordSink) message(d []byte) { s.events = append(s.events, "msg:"+string(d)) }
func (s *recordSink) ping(p []byte)    { s.events = append(s.events, "ping:"+string(p)) }
func (s *recordSink) peerClose(code int) {
	s.events = append(s.events, fmt.Sprintf("close:%d", code))
}

// feedInChunks feeds stream in pieces of size chunk and returns what the
// sink saw.
func feedInChunks(t *testing.T, stream []byte, chunk, max int) ([]string, error) {
	t.Helper()
	r := newFrameReader(max)
	s := &recordSink{}
	for i := 0; i < len(stream); i += chunk {
		end := min(i+chunk, len(stream))
		piece := append([]byte(nil), stream[i:end]...) // the reader may unmask in place
		if err := r.feed(piece, s); err != nil {
			return s.events, err
		}
	}
	if len(r.carry()) != 0 {
		t.Errorf("%d bytes left carried after a complete stream", len(r.carry()))
	}
	return s.events, nil
}

var chunkings = []int{1, 2, 3, 7, 64, 1 << 20}

func TestFrameReaderAnyChunking(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 300)
	var stream []byte
	stream = append(stream, clientFrame(true, opText, []byte(`{"event":"one"}`))...)
	stream = append(stream, clientFrame(false, opText, []byte("frag-"))...)
	stream = append(stream, clientFrame(true, opPing, []byte("p"))...) // control inside a fragmented message
	stream = append(stream, clientFrame(true, opContinuation, []byte("ment"))...)
	stream = append(stream, clientFrame(true, opBinary, big)...)
	stream = append(stream, clientFrame(true, opText, nil)...)
	stream = append(stream, clientFrame(true, opPong, []byte("ignored"))...)
	want := []string{`msg:{"event":"one"}`, "ping:p", "msg:frag-ment", "msg:" + string(big), "msg:"}
	for _, chunk := range chunkings {
		got, err := feedInChunks(t, stream, chunk, 1024)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d:\n got %q\nwant %q", chunk, got, want)
		}
	}
}

// A message longer than the limit fails the connection as soon as a frame
// header declares it, before any of its payload has arrived.
func TestFrameReaderTooLargeFailsAtTheHeader(t *testing.T) {
	cases := map[string][]byte{
		"one frame":        clientFrame(true, opText, bytes.Repeat([]byte("x"), 101))[:8], // header only
		"fragments":        append(clientFrame(false, opBinary, bytes.Repeat([]byte("y"), 60)), clientFrame(true, opContinuation, bytes.Repeat([]byte("z"), 60))[:6]...),
		"2^62":             {0x81, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
		"2^63-1":           {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4},
		"16-bit over 100":  {0x81, 0xFE, 0x00, 0x65, 1, 2, 3, 4},
		"empty then large": append(clientFrame(false, opText, nil), clientFrame(true, opContinuation, bytes.Repeat([]byte("z"), 101))[:8]...),
	}
	for name, stream := range cases {
		for _, chunk := range chunkings {
			got, err := feedInChunks(t, stream, chunk, 100)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s, chunk %d: err = %v, want ErrTooLarge", name, chunk, err)
			}
			if len(got) != 0 {
				t.Errorf("%s: delivered %q", name, got)
			}
		}
	}
	// Exactly the limit is fine, in one frame or several.
	exact := clientFrame(true, opText, bytes.Repeat([]byte("x"), 100))
	split := append(clientFrame(false, opText, bytes.Repeat([]byte("x"), 50)), clientFrame(true, opContinuation, bytes.Repeat([]byte("x"), 50))...)
	for _, stream := range [][]byte{exact, split} {
		if got, err := feedInChunks(t, stream, 7, 100); err != nil || len(got) != 1 {
			t.Errorf("a message of exactly the limit: %q, %v", got, err)
		}
	}
}

func TestFrameReaderRefusesViolations(t *testing.T) {
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	rsv := clientFrame(true, opText, []byte("x"))
	rsv[0] |= 0x40
	cases := map[string][]byte{
		"unmasked":               unmasked,
		"reserved bits":          rsv,
		"long control":           clientFrame(true, opPing, bytes.Repeat([]byte("p"), 126)),
		"fragmented control":     clientFrame(false, opPing, nil),
		"orphan continuation":    clientFrame(true, opContinuation, []byte("x")),
		"text inside fragments":  append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...),
		"unknown opcode":         clientFrame(true, 0x3, nil),
		"unknown control opcode": clientFrame(true, 0xB, nil),
		"length top bit":         {0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		"close of one byte":      clientFrame(true, opClose, []byte{0x03}),
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases[fmt.Sprintf("close code %d", code)] = clientFrame(true, opClose, closePayload(code, ""))
	}
	for name, stream := range cases {
		if _, err := feedInChunks(t, stream, 1<<20, 1024); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want a protocol error", name, err)
		}
	}
}

func TestFrameReaderCloseCodes(t *testing.T) {
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		got, err := feedInChunks(t, clientFrame(true, opClose, closePayload(code, "bye ✓")), 3, 1024)
		if err != nil || fmt.Sprint(got) != fmt.Sprintf("[close:%d]", code) {
			t.Errorf("close %d: %q, %v", code, got, err)
		}
	}
	if got, err := feedInChunks(t, clientFrame(true, opClose, nil), 1, 1024); err != nil || fmt.Sprint(got) != "[close:1000]" {
		t.Errorf("empty close: %q, %v", got, err)
	}
	if _, err := feedInChunks(t, clientFrame(true, opClose, closePayload(1000, "\xC3\x28")), 1, 1024); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("close reason with invalid UTF-8: err = %v, want ErrInvalidUTF8", err)
	}
}

// Nothing after the client's close frame, or after a violation, is
// processed: a client cannot have frames handled once it is being closed.
func TestFrameReaderStopsAtTheEnd(t *testing.T) {
	after := clientFrame(true, opText, []byte("after"))
	r := newFrameReader(1024)
	s := &recordSink{}
	stream := append(clientFrame(true, opClose, closePayload(1000, "")), after...)
	if err := r.feed(stream, s); err != nil {
		t.Fatal(err)
	}
	if err := r.feed(append([]byte(nil), after...), s); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.events) != "[close:1000]" {
		t.Fatalf("after close: %q", s.events)
	}
	r = newFrameReader(1024)
	s = &recordSink{}
	if err := r.feed(append(clientFrame(true, 0x3, nil), after...), s); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
	if err := r.feed(append([]byte(nil), after...), s); err != nil || len(s.events) != 0 {
		t.Fatalf("after a violation: %q, %v", s.events, err)
	}
}

// Text messages must be valid UTF-8, whole and fragment by fragment; a
// character may straddle fragments and chunks.
func TestFrameReaderUTF8(t *testing.T) {
	type tc struct {
		frags [][]byte
		ok    bool
	}
	b := func(s string) []byte { return []byte(s) }
	cases := map[string]tc{
		"ascii":                 {[][]byte{b(`{"event":"x"}`)}, true},
		"multi-byte":            {[][]byte{b("κόσμε €𝄞")}, true},
		"split 2-byte":          {[][]byte{b("a\xC3"), b("\xA9b")}, true},
		"split 3-byte 1+2":      {[][]byte{b("\xE2"), b("\x82\xAC")}, true},
		"split 3-byte 2+1":      {[][]byte{b("\xE2\x82"), b("\xAC")}, true},
		"split 4-byte 1+1+1+1":  {[][]byte{b("\xF0"), b("\x9D"), b("\x84"), b("\x9E")}, true},
		"empty fragments":       {[][]byte{nil, b("é"), nil}, true},
		"max code point":        {[][]byte{b("\xF4\x8F\xBF\xBF")}, true},
		"C3 28 FF in JSON":      {[][]byte{b(`{"data":"` + "\xC3\x28\xFF" + `"}`)}, false},
		"lone continuation":     {[][]byte{b("\x80")}, false},
		"overlong":              {[][]byte{b("\xC0\xAF")}, false},
		"overlong 3-byte split": {[][]byte{b("\xE0"), b("\x80\xAF")}, false},
		"surrogate":             {[][]byte{b("\xED\xA0\x80")}, false},
		"surrogate split":       {[][]byte{b("\xED"), b("\xA0\x80")}, false},
		"over U+10FFFF":         {[][]byte{b("\xF4\x90\x80\x80")}, false},
		"F5":                    {[][]byte{b("\xF5\x80")}, false},
		"truncated at the end":  {[][]byte{b("ok"), b("\xE2\x82")}, false},
		"truncated whole":       {[][]byte{b("ok\xE2\x82")}, false},
		"invalid mid-fragment":  {[][]byte{b("\xCE\xBA\xE1"), b("\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80"), b("edited")}, false},
	}
	for name, c := range cases {
		var stream []byte
		for i, f := range c.frags {
			op := byte(opContinuation)
			if i == 0 {
				op = opText
			}
			stream = append(stream, clientFrame(i == len(c.frags)-1, op, f)...)
		}
		for _, chunk := range chunkings {
			got, err := feedInChunks(t, stream, chunk, 1024)
			if c.ok {
				if err != nil || len(got) != 1 || !utf8.ValidString(got[0]) {
					t.Errorf("%s, chunk %d: %q, %v", name, chunk, got, err)
				}
				continue
			}
			if !errors.Is(err, ErrInvalidUTF8) || len(got) != 0 {
				t.Errorf("%s, chunk %d: %q, err = %v, want ErrInvalidUTF8 and nothing delivered", name, chunk, got, err)
			}
		}
		// The same bytes in a binary message are the client's business.
		stream[0] = stream[0]&0xF0 | opBinary
		if _, err := feedInChunks(t, stream, 5, 1024); err != nil {
			t.Errorf("%s as binary: %v", name, err)
		}
	}
}

// A fragmented message fails as soon as its bad bytes arrive, before it
// ends.
func TestFrameReaderUTF8FailsFast(t *testing.T) {
	r := newFrameReader(1024)
	s := &recordSink{}
	if err := r.feed(clientFrame(false, opText, []byte("fine \xE2\x82")), s); err != nil {
		t.Fatalf("valid so far: %v", err)
	}
	if err := r.feed(clientFrame(false, opContinuation, []byte("\x28")), s); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("err = %v, want ErrInvalidUTF8 before the message ends", err)
	}
}

func TestValidPrefixMatchesUTF8Valid(t *testing.T) {
	// For every string of up to three bytes from an alphabet of
	// interesting bytes, a valid string is accepted whole, and an accepted
	// one with a tail completes to a valid string by some continuation.
	alphabet := []byte{'a', 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF}
	var try func(p []byte)
	try = func(p []byte) {
		n, ok := validPrefix(p)
		if utf8.Valid(p) != (ok && n == len(p)) {
			t.Fatalf("%x: validPrefix = %d, %v; utf8.Valid = %v", p, n, ok, utf8.Valid(p))
		}
		if ok && n < len(p) {
			completes := false
			for _, tail := range [][]byte{{0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}, {0xA0}, {0xA0, 0x80}, {0xA0, 0x80, 0x80}, {0x90, 0x80, 0x80}} {
				if utf8.Valid(append(append([]byte(nil), p...), tail...)) {
					completes = true
				}
			}
			if !completes {
				t.Fatalf("%x: accepted with a tail at %d that no continuation completes", p, n)
			}
		}
		if len(p) == 4 {
			return
		}
		for _, c := range alphabet {
			try(append(append([]byte(nil), p...), c))
		}
	}
	try(nil)
}

func TestFrameReaderKeepsNoBufferWhenIdle(t *testing.T) {
	r := newFrameReader(1024)
	s := &recordSink{}
	r.feed(clientFrame(true, opText, []byte("hello")), s)
	if r.carry() != nil || len(r.msg()) != 0 {
		t.Fatalf("idle reader holds carry=%d msg=%d bytes", len(r.carry()), len(r.msg()))
	}
	// A frame that straddled two reads, and a fragmented message too large
	// to keep a buffer for, leave no buffers behind either.
	f := clientFrame(true, opText, []byte("straddling"))
	r.feed(append([]byte(nil), f[:5]...), s)
	if r.bufs == nil {
		t.Fatal("a frame's first piece was not kept")
	}
	r.feed(append([]byte(nil), f[5:]...), s)
	r = newFrameReader(64 << 10)
	big := bytes.Repeat([]byte("b"), 5000)
	if err := r.feed(append(clientFrame(false, opText, big[:2500]), clientFrame(true, opContinuation, big[2500:])...), s); err != nil {
		t.Fatal(err)
	}
	if r.bufs != nil || len(s.events) != 3 {
		t.Fatalf("after %d messages the reader keeps buffers %+v", len(s.events), r.bufs)
	}
	if n := unsafe.Sizeof(frameReader{}); n > 16 {
		t.Errorf("frameReader is %d bytes, want at most 16", n)
	}
}

// A frame trickled in byte by byte is appended to, not copied again on
// every read (the carry is reallocated only as append grows it), and what
// the reader holds follows what has arrived, not what the header declares.
func TestFrameReaderTrickleIsLinear(t *testing.T) {
	payload := bytes.Repeat([]byte("t"), 60000)
	stream := clientFrame(true, opText, payload)
	r := newFrameReader(64 << 10)
	s := &recordSink{}
	r.feed(append([]byte(nil), stream[:14]...), s) // the header, and a little
	if c := cap(r.carry()); c > 64 {
		t.Fatalf("a 14-byte piece of a 60 000-byte frame holds %d bytes", c)
	}
	reallocs := 0
	c0 := &r.carry()[:1][0]
	for i := 14; i < len(stream)-1; i++ {
		r.feed([]byte{stream[i]}, s)
		if c := &r.carry()[:1][0]; c != c0 {
			reallocs, c0 = reallocs+1, c
		}
		if cap(r.carry()) > 2*len(r.carry())+64 {
			t.Fatalf("carry of %d bytes holds %d", len(r.carry()), cap(r.carry()))
		}
	}
	r.feed([]byte{stream[len(stream)-1]}, s)
	if len(s.events) != 1 || len(s.events[0]) != 4+len(payload) {
		t.Fatalf("got %d events", len(s.events))
	}
	if reallocs > 40 {
		t.Fatalf("carry reallocated %d times for one frame", reallocs)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"event":"pusher:ping"}`)), 3)
	f.Add(append(clientFrame(false, opText, []byte("a\xE2")), clientFrame(true, opContinuation, []byte("\x82\xACb"))...), 1)
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 2)
	f.Add(clientFrame(true, opClose, closePayload(1000, "ok")), 1)
	f.Add(clientFrame(true, opText, []byte("\xC3\x28\xFF")), 2)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk <= 0 || chunk > len(stream)+1 {
			chunk = len(stream) + 1
		}
		r := newFrameReader(256)
		s := &recordSink{}
		var ferr error
		for i := 0; i < len(stream) && ferr == nil; i += chunk {
			ferr = r.feed(append([]byte(nil), stream[i:min(i+chunk, len(stream))]...), s)
		}
		if ferr != nil && !errors.Is(ferr, ErrProtocol) && !errors.Is(ferr, ErrInvalidUTF8) && !errors.Is(ferr, ErrTooLarge) {
			t.Fatalf("unexpected error %v", ferr)
		}
		if len(r.carry()) > 256+14 || len(r.msg()) > 256 {
			t.Fatalf("reader holds carry %d, msg %d bytes over a limit of 256", len(r.carry()), len(r.msg()))
		}
		// The same stream fed whole gives the same events: chunking never
		// changes what is decoded.
		r2 := newFrameReader(256)
		s2 := &recordSink{}
		err2 := r2.feed(append([]byte(nil), stream...), s2)
		if (ferr == nil) != (err2 == nil) || fmt.Sprint(s.events) != fmt.Sprint(s2.events) {
			t.Fatalf("chunk %d gave %q, %v; whole gave %q, %v", chunk, s.events, ferr, s2.events, err2)
		}
		for _, e := range s.events {
			if strings.HasPrefix(e, "msg:") && len(e) > 4+256 {
				t.Fatalf("message over the limit delivered: %d bytes", len(e)-4)
			}
			if strings.HasPrefix(e, "close:") {
				var code int
				fmt.Sscanf(e, "close:%d", &code)
				if !validCloseCode(code) {
					t.Fatalf("close code %d passed on", code)
				}
			}
		}
	})
}

func TestCloseFrameCutsReasonOnCharacters(t *testing.T) {
	f := closeFrame(1000, strings.Repeat("é", 100)) // 200 bytes
	p := f[2:]
	if len(p) > 125 || !utf8.Valid(p[2:]) {
		t.Fatalf("close payload of %d bytes, valid UTF-8 %v", len(p), utf8.Valid(p[2:]))
	}
}

// FuzzTextFragments checks the incremental UTF-8 check against
// utf8.Valid: a text message split into fragments anywhere, and fed in
// chunks of any size, is accepted exactly when its bytes are valid UTF-8,
// and delivered whole.
func FuzzTextFragments(f *testing.F) {
	f.Add([]byte("κόσμε €𝄞"), uint8(3), uint8(2), uint8(1))
	f.Add([]byte("ok\xE2\x82"), uint8(3), uint8(1), uint8(1))
	f.Add([]byte("\xED\xA0\x80"), uint8(1), uint8(2), uint8(5))
	f.Add([]byte("\xF4\x90\x80\x80"), uint8(2), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, msg []byte, cut1, cut2, chunk uint8) {
		if len(msg) > 200 {
			msg = msg[:200]
		}
		a := min(int(cut1), len(msg))
		b := min(a+int(cut2), len(msg))
		stream := clientFrame(false, opText, msg[:a])
		stream = append(stream, clientFrame(false, opContinuation, msg[a:b])...)
		stream = append(stream, clientFrame(true, opContinuation, msg[b:])...)
		r := newFrameReader(256)
		s := &recordSink{}
		var err error
		step := int(chunk)%16 + 1
		for i := 0; i < len(stream) && err == nil; i += step {
			err = r.feed(append([]byte(nil), stream[i:min(i+step, len(stream))]...), s)
		}
		if valid := utf8.Valid(msg); valid != (err == nil) {
			t.Fatalf("%x cut at %d, %d: utf8.Valid %v, reader err %v", msg, a, b, valid, err)
		}
		if err == nil && (len(s.events) != 1 || s.events[0] != "msg:"+string(msg)) {
			t.Fatalf("delivered %q", s.events)
		}
		if err != nil && (len(s.events) != 0 || !errors.Is(err, ErrInvalidUTF8)) {
			t.Fatalf("err %v, delivered %q", err, s.events)
		}
	})
}

// The reader's limit is 32-bit, to keep every connection's state small: a
// configured limit beyond that is taken as the largest it can hold, never
// wrapped to a small or negative one that would refuse every message.
func TestFrameReaderLimitClamped(t *testing.T) {
	for _, limit := range []int{1, 64 << 10, math.MaxInt32, math.MaxInt32 + 1, math.MaxInt} {
		r := newFrameReader(limit)
		if want := int32(min(limit, math.MaxInt32)); r.max != want {
			t.Errorf("limit %d: reader max %d, want %d", limit, r.max, want)
		}
		s := &recordSink{}
		if err := r.feed(clientFrame(true, opText, []byte("x")), s); err != nil || len(s.events) != 1 {
			t.Errorf("limit %d: a 1-byte message gave %v, %d events", limit, err, len(s.events))
		}
	}
}

// limitedReader is a frameReader with its limit, as a transport feeds it.
type limitedReader struct {
	frameReader
	max int32
}

func newFrameReader(limit int) *limitedReader { return &limitedReader{max: readLimit(limit)} }

func (r *limitedReader) feed(data []byte, sink frameSink) error {
	return r.frameReader.feed(data, r.max, sink)
}

// The queue bound is clamped too: a connection's byte and frame counts
// are 32-bit.
func TestMaxQueueBytesClamped(t *testing.T) {
	for _, limit := range []int{1, MaxQueueBytesLimit, MaxQueueBytesLimit + 1, math.MaxInt32 + 1, math.MaxInt} {
		c := Config{MaxQueueBytes: limit}
		c.normalize()
		if want := min(limit, MaxQueueBytesLimit); c.MaxQueueBytes != want {
			t.Errorf("MaxQueueBytes %d normalized to %d, want %d", limit, c.MaxQueueBytes, want)
		}
	}
}
