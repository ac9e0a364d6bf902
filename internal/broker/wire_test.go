package broker

import (
	"bytes"
	"errors"
	"testing"
)

var wireCases = []Message{
	{},
	{Kind: KindEvent, AppID: "1", Channel: "news", Event: "e", Data: "d"},
	{Kind: KindEvent, AppID: "app", Channel: "private-cache-x", Event: "client-hi", Data: `{"a":[1,"é"]}`, DataJSON: true, UserID: "u", Exclude: "123.456", Cache: true},
	{Kind: KindTerminate, AppID: "a", UserID: "alice"},
	{Kind: KindMemberAdded, AppID: "a", Channel: "presence-r", UserID: "u1", Data: `{"name":"x"}`, Exclude: "1.2"},
	{Kind: KindMemberRemoved, AppID: "a", Channel: "presence-r", UserID: "u1"},
	{Kind: KindEvent, AppID: "a", Channel: "c", Event: "big", Data: string(bytes.Repeat([]byte{'x'}, 70000))},
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range wireCases {
		b := AppendWire(nil, &m)
		if b[0] != wireVersion {
			t.Fatalf("version byte %d", b[0])
		}
		got, err := DecodeWire(b)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if got != m {
			t.Fatalf("round trip: %+v, want %+v", got, m)
		}
	}
}

func TestWireRefusals(t *testing.T) {
	good := AppendWire(nil, &wireCases[2])
	cases := map[string][]byte{
		"empty":          nil,
		"short":          good[:2],
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"unknown kind":   append([]byte{wireVersion, 200, 0}, good[3:]...),
		"unknown flag":   append([]byte{wireVersion, 0, 4}, good[3:]...),
		"long length":    {wireVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"padded length":  {wireVersion, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0},
		"missing fields": {wireVersion, 0, 0, 0},
	}
	for name, b := range cases {
		if _, err := DecodeWire(b); !errors.Is(err, ErrWireFormat) {
			t.Errorf("%s: %v, want ErrWireFormat", name, err)
		}
	}
	future := bytes.Clone(good)
	future[0] = wireVersion + 1
	if _, err := DecodeWire(future); !errors.Is(err, ErrWireVersion) {
		t.Errorf("a later version: %v, want ErrWireVersion", err)
	}
}

// Decoding never panics, and whatever decodes re-encodes to the same bytes:
// one encoding per message.
func FuzzDecodeWire(f *testing.F) {
	for _, m := range wireCases[:6] {
		f.Add(AppendWire(nil, &m))
	}
	f.Add([]byte{wireVersion, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeWire(b)
		if err != nil {
			return
		}
		if again := AppendWire(nil, &m); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, m, again)
		}
	})
}
