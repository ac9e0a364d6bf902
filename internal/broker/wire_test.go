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
	{Kind: KindUnsubscribe, AppID: "a", Channel: "chat", UserID: "u1"},
	{Kind: KindEvent, AppID: "a", Channel: "c", Event: "tagged", Data: `{}`, DataJSON: true,
		Tags: map[string]string{"event": "tick", "b": "", "": "empty key", "é": "ü"}},
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
		if !got.Equal(&m) {
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
	tagged := AppendWire(nil, &wireCases[7])
	// The tags of wireCases[7] as encoded: 4 tags, keys "", "b", "event", "é".
	tagsAt := bytes.Index(tagged, []byte{4, 0, 9})
	if tagsAt < 0 {
		t.Fatalf("tags not found in %x", tagged)
	}
	head := tagged[:tagsAt]
	tagCases := map[string][]byte{
		"no tag count":      head,
		"too many tags":     append(bytes.Clone(head), 5, 0, 0),
		"huge tag count":    append(bytes.Clone(head), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"padded tag count":  append(bytes.Clone(head), 0x80, 0x00),
		"unsorted keys":     append(bytes.Clone(head), 2, 1, 'b', 0, 1, 'a', 0),
		"duplicate keys":    append(bytes.Clone(head), 2, 1, 'a', 0, 1, 'a', 0),
		"tag without value": append(bytes.Clone(head), 1, 1, 'a'),
		"tags trailing":     append(bytes.Clone(tagged), 0),
	}
	for name, b := range tagCases {
		if _, err := DecodeWire(b); !errors.Is(err, ErrWireFormat) {
			t.Errorf("%s: %v, want ErrWireFormat", name, err)
		}
	}
	// Version 1 has no tags: a tag count is trailing bytes.
	v1 := append([]byte{1}, good[1:len(good)-1]...)
	if _, err := DecodeWire(append(bytes.Clone(v1), 0)); !errors.Is(err, ErrWireFormat) {
		t.Errorf("version 1 with a tag count: %v, want ErrWireFormat", err)
	}
	future := bytes.Clone(good)
	future[0] = wireVersion + 1
	if _, err := DecodeWire(future); !errors.Is(err, ErrWireVersion) {
		t.Errorf("a later version: %v, want ErrWireVersion", err)
	}
}

// wireV1 is m's version 1 encoding: version 2 without the tag count, for a
// message without tags.
func wireV1(m *Message) []byte {
	b := AppendWire(nil, m)
	b[0] = 1
	return b[:len(b)-1]
}

// Messages from nodes of the earlier release decode, as messages without
// tags.
func TestWireVersion1(t *testing.T) {
	for _, m := range wireCases {
		if len(m.Tags) != 0 {
			continue
		}
		got, err := DecodeWire(wireV1(&m))
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !got.Equal(&m) || got.Tags != nil {
			t.Fatalf("version 1: %+v, want %+v", got, m)
		}
	}
}

// Decoding never panics, and whatever decodes re-encodes to the same bytes:
// one encoding per message.
func FuzzDecodeWire(f *testing.F) {
	for _, m := range wireCases[:8] {
		f.Add(AppendWire(nil, &m))
		f.Add(wireV1(&m))
	}
	f.Add([]byte{wireVersion, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeWire(b)
		if err != nil {
			return
		}
		again := AppendWire(nil, &m)
		if b[0] == 1 {
			again = wireV1(&m)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, m, again)
		}
	})
}
