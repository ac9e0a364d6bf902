package centrifugo

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/broker"
)

func TestEncodePublication(t *testing.T) {
	tests := []struct {
		name string
		m    broker.Message
		want string
	}{
		{"REST string data", broker.Message{Channel: "c", Event: "e", Data: "plain text"},
			`{"push":{"channel":"c","pub":{"data":"plain text","tags":{"event":"e"}}}}`},
		{"REST JSON data is parsed, newlines dropped", broker.Message{Channel: "c", Event: "e", Data: "{\n\"a\" : 1}"},
			`{"push":{"channel":"c","pub":{"data":{"a":1},"tags":{"event":"e"}}}}`},
		{"empty data is a string", broker.Message{Channel: "c", Event: "e"},
			`{"push":{"channel":"c","pub":{"data":"","tags":{"event":"e"}}}}`},
		{"newline in a string is escaped", broker.Message{Channel: "c", Event: "e", Data: "a\nb"},
			`{"push":{"channel":"c","pub":{"data":"a\nb","tags":{"event":"e"}}}}`},
		{"tags sorted, event added", broker.Message{Channel: "c", Event: "e", Data: "1", Tags: map[string]string{"z": "1", "a": "2"}},
			`{"push":{"channel":"c","pub":{"data":1,"tags":{"a":"2","event":"e","z":"1"}}}}`},
		{"an event tag wins", broker.Message{Channel: "c", Event: "e", Data: "1", Tags: map[string]string{"event": "t"}},
			`{"push":{"channel":"c","pub":{"data":1,"tags":{"event":"t"}}}}`},
		{"no event, no tags", broker.Message{Channel: "c", Data: "1"},
			`{"push":{"channel":"c","pub":{"data":1}}}`},
		{"sender", broker.Message{Channel: "c", Event: "e", Data: `{}`, DataJSON: true, UserID: "u"},
			`{"push":{"channel":"c","pub":{"data":{},"info":{"user":"u","client":""},"tags":{"event":"e"}}}}`},
		{"member added", broker.Message{Kind: broker.KindMemberAdded, Channel: "presence-c", UserID: "u", Data: `{"n": 1}`},
			`{"push":{"channel":"presence-c","join":{"info":{"user":"u","client":"u","conn_info":{"n":1}}}}}`},
		{"member added without info", broker.Message{Kind: broker.KindMemberAdded, Channel: "presence-c", UserID: "u"},
			`{"push":{"channel":"presence-c","join":{"info":{"user":"u","client":"u"}}}}`},
		{"member removed", broker.Message{Kind: broker.KindMemberRemoved, Channel: "presence-c", UserID: "u"},
			`{"push":{"channel":"presence-c","leave":{"info":{"user":"u","client":"u"}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(EncodePublication(&tt.m))
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) || strings.ContainsRune(got, '\n') {
				t.Fatalf("not one line of JSON: %q", got)
			}
		})
	}
}

func FuzzEncodePublication(f *testing.F) {
	f.Add("c", "e", "{\"a\":\n1}", false, "u", "k", "v")
	f.Add("c", "", "\xff", true, "", "", "")
	f.Fuzz(func(t *testing.T, ch, event, data string, dataJSON bool, user, k, v string) {
		m := broker.Message{Channel: ch, Event: event, Data: data, DataJSON: dataJSON, UserID: user}
		if k != "" {
			m.Tags = map[string]string{k: v}
		}
		got := EncodePublication(&m)
		if !json.Valid(got) || !utf8.Valid(got) || strings.ContainsRune(string(got), '\n') {
			t.Fatalf("not one line of UTF-8 JSON: %q", got)
		}
	})
}
