package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

// pusherFrame builds a channel event the way Pusher servers send it: data
// is the published string, JSON-encoded as a string.
func pusherFrame(event, channel string, data []byte) []byte {
	b := []byte(`{"event":`)
	b = appendJSONString(b, event)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	return append(b, '}')
}

func TestMarkRoundTrip(t *testing.T) {
	marks := []Mark{
		{},
		{Stream: 3, Seq: 41, TS: 1_763_000_000_123_456_789},
		{Stream: 1<<32 - 1, Seq: 1<<32 - 1, TS: 1<<63 - 1},
	}
	for _, m := range marks {
		for _, size := range []int{1, 40, 100, 1024, 10240} {
			data := AppendData(nil, m, size)
			if !json.Valid(data) {
				t.Fatalf("data %q is not JSON", data)
			}
			bare := len(AppendData(nil, m, 0))
			if size > bare+len(`,"pad":""`) && len(data) != size {
				t.Errorf("size %d: data is %d bytes", size, len(data))
			}
			var obj struct{ HB, Pad string }
			if err := json.Unmarshal(data, &obj); err != nil || obj.HB == "" || strings.Trim(obj.Pad, "x") != "" {
				t.Fatalf("data %q: %+v %v", data, obj, err)
			}

			// As a Pusher server sends it (data as a JSON string)…
			got, ok := ParseMark(pusherFrame(EventName, "hb-1", data))
			if !ok || got != m {
				t.Errorf("string data: ParseMark = %+v %v, want %+v", got, ok, m)
			}
			// …and as a lenient server might (data as an object).
			obj2 := append(append([]byte(`{"event":"herald-bench","data":`), data...), '}')
			got, ok = ParseMark(obj2)
			if !ok || got != m {
				t.Errorf("object data: ParseMark = %+v %v, want %+v", got, ok, m)
			}
		}
	}
}

func TestParseMarkRejects(t *testing.T) {
	for _, msg := range []string{
		``,
		`{"event":"herald-bench","data":"{}"}`,
		`{"event":"herald-bench","data":"{\"hb\":\"1.2\"}"}`,
		`{"event":"herald-bench","data":"{\"hb\":\"1..3\"}"}`,
		`{"event":"herald-bench","data":"{\"hb\":\"a.2.3\"}"}`,
		`{"event":"herald-bench","data":"{\"hb\":\"1.2.3x\"}"}`,
		`{"event":"herald-bench","data":"{\"hb\":\"99999999999.2.3\"}"}`,
		`{"event":"herald-bench","data":"{\"hbx\":\"1.2.3\"}"}`,
	} {
		if m, ok := ParseMark([]byte(msg)); ok {
			t.Errorf("ParseMark(%s) = %+v, want failure", msg, m)
		}
	}
}

func TestEventAndValues(t *testing.T) {
	est := []byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`)
	if got := string(eventOf(est)); got != evConnectionEstablished {
		t.Errorf("event %q", got)
	}
	if got := string(valueOf(est, "socket_id")); got != "123.456" {
		t.Errorf("socket_id %q", got)
	}
	if got := string(valueOf(est, "activity_timeout")); got != "120" {
		t.Errorf("activity_timeout %q", got)
	}
	// Keys in another order, with spaces, and a key that is a prefix of another.
	odd := []byte(`{"channel": "presence-x", "data": "{\"user_id\":\"c12-3\",\"user_info\":{\"hb_t\":77}}", "event": "pusher_internal:member_added"}`)
	if got := string(eventOf(odd)); got != evMemberAdded {
		t.Errorf("event %q", got)
	}
	if got := string(valueOf(odd, "channel")); got != "presence-x" {
		t.Errorf("channel %q", got)
	}
	if got := string(valueOf(odd, "user_id")); got != "c12-3" {
		t.Errorf("user_id %q", got)
	}
	if got := string(valueOf(odd, "hb_t")); got != "77" {
		t.Errorf("hb_t %q", got)
	}
	if valueOf(odd, "hb") != nil || valueOf(odd, "missing") != nil {
		t.Error("absent keys should give nil")
	}
}

func TestParseChurner(t *testing.T) {
	for _, tc := range []struct {
		id   string
		j, r int
		ok   bool
	}{
		{"c0-0", 0, 0, true},
		{"c12-345", 12, 345, true},
		{"w12", 0, 0, false},
		{"c12", 0, 0, false},
		{"c12-", 0, 0, false},
		{"c-1", 0, 0, false},
		{"c1-2x", 0, 0, false},
	} {
		j, r, ok := parseChurner([]byte(tc.id))
		if ok != tc.ok || ok && (j != tc.j || r != tc.r) {
			t.Errorf("parseChurner(%q) = %d %d %v", tc.id, j, r, ok)
		}
	}
}

func TestChannelIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"hb-ab-0", 0}, {"hb-ab-1234", 1234}, {"hb-ab-", -1}, {"hb-xx-1", -1}, {"hb-ab-1a", -1}, {"hb", -1},
	} {
		if got := channelIndex([]byte(tc.name), "hb-ab-"); got != tc.want {
			t.Errorf("channelIndex(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSubscribeMessages(t *testing.T) {
	var m struct {
		Event string
		Data  struct {
			Channel     string
			Auth        string
			ChannelData string `json:"channel_data"`
		}
	}
	msg := appendSubscribe(nil, "presence-a", "key:sig", `{"user_id":"u\"1"}`)
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	if m.Event != "pusher:subscribe" || m.Data.Channel != "presence-a" || m.Data.Auth != "key:sig" || m.Data.ChannelData != `{"user_id":"u\"1"}` {
		t.Errorf("%s decoded to %+v", msg, m)
	}
	if got := string(appendSubscribe(nil, "public", "", "")); got != `{"event":"pusher:subscribe","data":{"channel":"public"}}` {
		t.Errorf("public subscribe %s", got)
	}
	if got := string(appendUnsubscribe(nil, "a")); got != `{"event":"pusher:unsubscribe","data":{"channel":"a"}}` {
		t.Errorf("unsubscribe %s", got)
	}
	if got := string(appendJSONString(nil, "a\"b\\c\n\x01")); got != `"a\"b\\c\u000a\u0001"` {
		t.Errorf("escaped %s", got)
	}
}

func FuzzParseMark(f *testing.F) {
	f.Add([]byte(`{"event":"herald-bench","channel":"c","data":"{\"hb\":\"1.2.3\"}"}`))
	f.Add([]byte(`{"hb":"1.2.3"}`))
	f.Add([]byte(`"hb\"`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ParseMark(msg)
		eventOf(msg)
		valueOf(msg, "user_id")
		parseChurner(msg)
	})
}
