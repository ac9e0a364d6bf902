package pusher

import (
	"testing"
	"unicode/utf8"
)

// decodeSlow is what parseSubscribe replaces.
func decodeSlow(b []byte) (SubscribeData, bool) {
	m, err := ParseMessage(b)
	if err != nil || m.Event != "pusher:subscribe" {
		return SubscribeData{}, false
	}
	d, err := decodeSubscribe(m)
	return d, err == nil
}

var subscribeFrames = []string{
	`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`,
	`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"key:sig"}}`,
	`{"data":{"channel":"presence-a","auth":"key:sig","channel_data":"{\"user_id\":\"1\"}"},"event":"pusher:subscribe"}`,
	` { "event" : "pusher:subscribe" , "data" : { "channel" : "a" } } `,
	`{"event":"pusher:subscribe","data":{}}`,
	`{"event":"pusher:subscribe","data":"{\"channel\":\"a\"}"}`,
	`{"event":"pusher:subscribe","data":{"Channel":"a"}}`,
	`{"event":"pusher:subscribe","data":{"channel":"a","channel":"b"}}`,
	`{"event":"pusher:subscribe","data":{"channel":"a"},"channel":"x"}`,
	`{"event":"pusher:subscribe","data":{"channel":"a"}}x`,
	`{"event":"pusher:ping","data":{}}`,
	`{"event":"pusher:subscribe","data":{"channel":"a",}}`,
	`{"event":"pusher:subscribe","data":{"channel":"ü"}}`,
}

func TestParseSubscribe(t *testing.T) {
	fast := 0
	for _, f := range subscribeFrames {
		d, ok := parseSubscribe([]byte(f))
		if !ok {
			continue
		}
		fast++
		want, wantOK := decodeSlow([]byte(f))
		if !wantOK || d != want {
			t.Errorf("parseSubscribe(%s) = %+v, encoding/json: %+v %v", f, d, want, wantOK)
		}
	}
	// The forms clients send take the fast path.
	for _, i := range []int{0, 1, 3, 12} {
		if _, ok := parseSubscribe([]byte(subscribeFrames[i])); !ok {
			t.Errorf("parseSubscribe(%s) declined a plain subscribe", subscribeFrames[i])
		}
	}
	if fast != 4 {
		t.Errorf("%d frames took the fast path, want 4", fast)
	}
}

func TestParseSubscribeAlloc(t *testing.T) {
	b := []byte(`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`)
	// The channel name, and nothing else (auth is empty).
	if n := testing.AllocsPerRun(100, func() { parseSubscribe(b) }); n > 1 {
		t.Errorf("parseSubscribe allocates %v times, want 1", n)
	}
}

// FuzzParseSubscribe checks parseSubscribe against ParseMessage and
// DecodeData, which it stands in for: whatever it accepts, they accept and
// decode the same. Frames that are not UTF-8 are refused by the session
// before either result is used.
func FuzzParseSubscribe(f *testing.F) {
	for _, s := range subscribeFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := parseSubscribe(b)
		if !ok || !utf8.Valid(b) {
			return
		}
		want, wantOK := decodeSlow(b)
		if !wantOK || d != want {
			t.Fatalf("parseSubscribe(%q) = %+v, encoding/json: %+v %v", b, d, want, wantOK)
		}
	})
}
