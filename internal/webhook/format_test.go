package webhook

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzClientData: whatever JSON a client sent, the client_event's data is
// a string in a body that is valid JSON: the string itself when the client
// sent a string, else the JSON text as sent.
func FuzzClientData(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `"hello"`, `"quo\"te \u00e9 \ud83d\ude00"`, `[1,2]`, `null`, `12.5e3`, `"<&>"`, `"\u0000"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return
		}
		data := clientData(raw)
		var str string
		if raw[0] == '"' && json.Unmarshal([]byte(raw), &str) == nil {
			if data != str {
				t.Fatalf("clientData(%q) = %q, want the string %q", raw, data, str)
			}
		} else if data != raw {
			t.Fatalf("clientData(%q) = %q, want the JSON text", raw, data)
		}
		ev := &event{Name: nameClientEvent, Channel: "private-c", Event: "client-x", Data: &data, SocketID: "1.2"}
		body := encodeBody(time.UnixMilli(1), []*event{ev})
		var got struct {
			TimeMS int64 `json:"time_ms"`
			Events []struct {
				Data *string `json:"data"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if got.TimeMS != 1 || len(got.Events) != 1 || got.Events[0].Data == nil {
			t.Fatalf("body %s", body)
		}
		// Text that is not UTF-8 cannot come from a client (its frames are
		// checked); valid text survives as it is.
		if utf8.ValidString(data) && *got.Events[0].Data != data {
			t.Fatalf("data %q came back as %q", data, *got.Events[0].Data)
		}
	})
}
