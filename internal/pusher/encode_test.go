package pusher

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/broker"
)

// checkFrame compares a message payload with the exact expected JSON.
func checkFrame(t *testing.T, name string, got []byte, want string) {
	t.Helper()
	if string(got) != want {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
	if !json.Valid(got) {
		t.Errorf("%s: payload is not valid JSON: %s", name, got)
	}
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name string
		m    broker.Message
		want string
	}{
		{"string data from the REST API",
			broker.Message{AppID: "1", Channel: "my-channel", Event: "my-event", Data: `{"some":"data"}`},
			`{"event":"my-event","channel":"my-channel","data":"{\"some\":\"data\"}"}`},
		{"plain string data",
			broker.Message{Channel: "test", Event: "test_event", Data: "test string"},
			`{"event":"test_event","channel":"test","data":"test string"}`},
		{"empty string data",
			broker.Message{Channel: "c", Event: "e"},
			`{"event":"e","channel":"c","data":""}`},
		{"raw JSON object from a client event",
			broker.Message{Channel: "private-chat", Event: "client-typing", Data: `{"text":"hi"}`, DataJSON: true},
			`{"event":"client-typing","channel":"private-chat","data":{"text":"hi"}}`},
		{"raw JSON string from a client event",
			broker.Message{Channel: "private-chat", Event: "client-typing", Data: `"hi"`, DataJSON: true},
			`{"event":"client-typing","channel":"private-chat","data":"hi"}`},
		{"presence client event carries user_id",
			broker.Message{Channel: "presence-room", Event: "client-x", Data: `[1,2]`, DataJSON: true, UserID: "u1"},
			`{"event":"client-x","channel":"presence-room","data":[1,2],"user_id":"u1"}`},
		{"presence member added",
			broker.Message{Channel: "presence-room", Event: "pusher_internal:member_added", Data: memberAddedData("7", []byte(`{"name":"Max"}`))},
			`{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"7\",\"user_info\":{\"name\":\"Max\"}}"}`},
		{"escaping in every field",
			broker.Message{Channel: "c\"1", Event: "e\n", Data: "tab\there \xff <b>", UserID: `u\`},
			`{"event":"e\n","channel":"c\"1","data":"tab\there \ufffd <b>","user_id":"u\\"}`},
		{"routing fields stay out of the frame",
			broker.Message{Kind: broker.KindEvent, AppID: "app", Channel: "c", Event: "e", Data: "d", Exclude: "1.2", Cache: true},
			`{"event":"e","channel":"c","data":"d"}`},
	}
	for _, tt := range tests {
		m := tt.m
		checkFrame(t, tt.name, EncodeEvent(&m), tt.want)
	}
}

// TestEncodeEventLengths crosses the WebSocket length-encoding boundaries.
func TestEncodeEventLengths(t *testing.T) {
	const overhead = len(`{"event":"e","channel":"c","data":""}`)
	for _, n := range []int{125, 126, 127, 0xffff, 0x10000, 200000} {
		data := strings.Repeat("d", n-overhead)
		want := `{"event":"e","channel":"c","data":"` + data + `"}`
		got := (EncodeEvent(&broker.Message{Channel: "c", Event: "e", Data: data}))
		if len(got) != n || string(got) != want {
			t.Errorf("payload of %d bytes: got %d bytes, equal=%v", n, len(got), string(got) == want)
		}
	}
}

func TestServerFrames(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"connection_established", connectionEstablishedFrame("123.456", 120),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`},
		{"connection_established 30s", connectionEstablishedFrame("264774.13368624", 30),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"264774.13368624\",\"activity_timeout\":30}"}`},
		{"error without code", errorFrame(0, "Invalid signature: Expected HMAC SHA256 hex digest of 1.1:private-x", "private-x"),
			`{"event":"pusher:error","channel":"private-x","data":{"code":null,"message":"Invalid signature: Expected HMAC SHA256 hex digest of 1.1:private-x"}}`},
		{"error with close code", errorFrame(CodeAppNotFound, MsgAppNotFound, ""),
			`{"event":"pusher:error","data":{"code":4001,"message":"Application does not exist"}}`},
		{"client event refused", errorFrame(CodeClientEventRefused, `rate "limit"`, "private-a"),
			`{"event":"pusher:error","channel":"private-a","data":{"code":4301,"message":"rate \"limit\""}}`},
		{"subscription_error", subscriptionErrorFrame("private-x", errTypeAuth, "The connection is unauthorized.", 401),
			`{"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"The connection is unauthorized.","status":401}}`},
		{"subscription_error limit", subscriptionErrorFrame("presence-x", errTypeLimit, "full", 403),
			`{"event":"pusher:subscription_error","channel":"presence-x","data":{"type":"LimitReached","error":"full","status":403}}`},
		{"subscription_succeeded", subscriptionSucceededFrame("my-channel"),
			`{"event":"pusher_internal:subscription_succeeded","channel":"my-channel","data":"{}"}`},
		{"presence subscription_succeeded", presenceSucceededFrame("presence-example", []broker.Member{
			{UserID: "11814b", Info: json.RawMessage(`{"name":"Phil Leggetter"}`)},
			{UserID: "71dd6a", Info: json.RawMessage(`{"name":"Max Williams"}`)},
			{UserID: "3"},
		}),
			`{"event":"pusher_internal:subscription_succeeded","channel":"presence-example","data":"{\"presence\":{\"ids\":[\"11814b\",\"71dd6a\",\"3\"],\"hash\":{\"11814b\":{\"name\":\"Phil Leggetter\"},\"71dd6a\":{\"name\":\"Max Williams\"},\"3\":{}},\"count\":3}}"}`},
		{"presence subscription_succeeded empty", presenceSucceededFrame("presence-x", nil),
			`{"event":"pusher_internal:subscription_succeeded","channel":"presence-x","data":"{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}"}`},
		{"cache_miss", cacheMissFrame("cache-prices"),
			`{"event":"pusher:cache_miss","channel":"cache-prices","data":"{}"}`},
		{"signin_success", signinSuccessFrame(`{"id":"1","name":"test"}`),
			`{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"1\",\"name\":\"test\"}"}}`},
		{"watchlist both", watchlistFrame([]string{"1"}, []string{"2", "3"}),
			`{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":["1"]},{"name":"offline","user_ids":["2","3"]}]}}`},
		{"watchlist offline only", watchlistFrame(nil, []string{"2"}),
			`{"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"offline","user_ids":["2"]}]}}`},
		{"watchlist empty", watchlistFrame(nil, nil),
			`{"event":"pusher_internal:watchlist_events","data":{"events":[]}}`},
		{"pong", pongFrame, `{"event":"pusher:pong","data":"{}"}`},
		{"ping", pingFrame, `{"event":"pusher:ping","data":"{}"}`},
	}
	for _, tt := range tests {
		checkFrame(t, tt.name, tt.frame, tt.want)
	}
}

// TestPresenceSucceededShape decodes the double-encoded presence data the way
// pusher-js (hash, count) and the Java client (ids, hash) read it.
func TestPresenceSucceededShape(t *testing.T) {
	members := []broker.Member{
		{UserID: `we"ird`, Info: json.RawMessage(`{"n":[1,"\u00e9"]}`)},
		{UserID: "2", Info: json.RawMessage(`{}`)},
	}
	var outer struct {
		Event, Channel, Data string
	}
	if err := json.Unmarshal(presenceSucceededFrame("presence-c", members), &outer); err != nil {
		t.Fatal(err)
	}
	var inner struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(outer.Data), &inner); err != nil {
		t.Fatalf("data %q: %v", outer.Data, err)
	}
	p := inner.Presence
	if outer.Event != "pusher_internal:subscription_succeeded" || outer.Channel != "presence-c" {
		t.Errorf("envelope = %+v", outer)
	}
	if len(p.IDs) != 2 || p.IDs[0] != `we"ird` || p.IDs[1] != "2" || p.Count != 2 || len(p.Hash) != 2 {
		t.Fatalf("presence = %+v", p)
	}
	if string(p.Hash[`we"ird`]) != `{"n":[1,"\u00e9"]}` || string(p.Hash["2"]) != `{}` {
		t.Errorf("hash = %s", p.Hash)
	}
}

func TestMemberData(t *testing.T) {
	tests := []struct{ got, want string }{
		{memberAddedData("10", []byte(`{"name":"Mr. Pusher"}`)), `{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`},
		{memberAddedData("10", nil), `{"user_id":"10","user_info":{}}`},
		{memberAddedData(`a"b`, nil), `{"user_id":"a\"b","user_info":{}}`},
		{memberRemovedData("10"), `{"user_id":"10"}`},
		{memberRemovedData("a\\b"), `{"user_id":"a\\b"}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
		if !json.Valid([]byte(tt.got)) {
			t.Errorf("%s is not valid JSON", tt.got)
		}
	}
}

// The connection_established written in one go is byte for byte what the
// general encoders make of it, and any other socket id takes their way.
func TestConnectionEstablishedMatchesGeneralEncoding(t *testing.T) {
	for _, id := range []string{"1.2", "123.456", "264774.13368624", "0.0", "..", "18446744073709551615.18446744073709551615"} {
		for _, timeout := range []int{0, 30, 120, -1, 1 << 40} {
			got, want := connectionEstablishedFrame(id, timeout), encodeConnectionEstablished(id, timeout)
			if string(got) != string(want) {
				t.Errorf("(%q, %d): got %s, want %s", id, timeout, got, want)
			}
			var outer struct{ Event, Data string }
			if err := json.Unmarshal(got, &outer); err != nil || outer.Event != "pusher:connection_established" {
				t.Fatalf("(%q, %d): %s does not decode: %v", id, timeout, got, err)
			}
		}
	}
	for _, id := range []string{`1."2`, "1.2\\", "1.2<", "a.b", ""} {
		if got, want := connectionEstablishedFrame(id, 30), encodeConnectionEstablished(id, 30); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", id, got, want)
		}
	}
}

func TestConnectionEstablishedAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { connectionEstablishedFrame("264774.13368624", 120) }); n > 1 {
		t.Errorf("connectionEstablishedFrame: %v allocations, want 1", n)
	}
}
