package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/apps"
)

var decodeSeeds = []string{
	`{"name":"tick","data":"{\"seq\":1,\"payload\":\"0123456789abcdef0123\"}","channel":"bench"}`,
	`{"name":"my-event","channels":["a","private-b","a"],"data":"{\"message\":\"hello world\"}","socket_id":"123.456","info":"subscription_count"}`,
	` { "name" : "e" , "data" : "x\n\t\\\/\b\f\r" , "channels" : [ ] } `,
	`{"name":"é","data":"ünï","channel":"c"}`,
	`{}`,
	`{"name":"e","data":{"a": 1},"channel":"c"}`,
	`{"name":"e","data":"\u00e9","channel":"c"}`,
	`{"Name":"e","data":"x","channel":"c"}`,
	`{"name":"e","name":"f","data":"x","channel":"c"}`,
	`{"name":null,"data":"x","channel":"c"}`,
	`{"name":"e","data":"x","channel":"c","extra":1}`,
	`{"name":"e","data":"x","channel":"c"} x`,
	`{"name":"e","data":"a` + "\xff" + `","channel":"c"}`,
	`{"name":"e","data":"x","channels":"c"}`,
	`{"name":"e","data":"\x01","channel":"c"}`,
	`{"name":"e","data":"\q","channel":"c"}`,
	``,
	`[]`,
}

// TestDecodeFastTakesSDKBodies: the fast decoders take what server SDKs
// send (or the fuzz tests below would compare nothing that matters), and
// leave the unusual to encoding/json.
func TestDecodeFastTakesSDKBodies(t *testing.T) {
	for _, body := range decodeSeeds[:4] {
		var b eventBody
		if !decodeEventFast([]byte(body), &b) {
			t.Errorf("decodeEventFast declined %s", body)
		}
	}
	for _, body := range decodeSeeds[5:] {
		var b eventBody
		if decodeEventFast([]byte(body), &b) {
			t.Errorf("decodeEventFast took %s, which is for encoding/json", body)
		}
	}
	batch := `{"batch":[` + decodeSeeds[0] + `,{"name":"e2","data":"y","channel":"c2"}]}`
	got, n, ok := decodeBatchFast([]byte(batch), 10)
	if !ok || len(got) != 2 || n != 2 || got[1].Name != "e2" || got[0].data != `{"seq":1,"payload":"0123456789abcdef0123"}` {
		t.Fatalf("decodeBatchFast = %+v, %v", got, ok)
	}
}

// fuzzApp has small limits, so that fuzzed bodies reach them.
var fuzzApp = &apps.App{ID: "1", MaxEventBytes: 64, MaxChannelNameLength: 32}

// sameEvent compares what the fast decoder made of a body with what
// encoding/json made of it, and what parseEvent makes of each.
func sameEvent(t *testing.T, body string, fast, slow *eventBody, index int) {
	t.Helper()
	if fast.Name != slow.Name || fast.Channel != slow.Channel || fast.SocketID != slow.SocketID || fast.Info != slow.Info ||
		!sameChannels(fast, slow) || fast.dataSet != (slow.Data != nil) {
		t.Fatalf("body %q: fast %+v, encoding/json %+v", body, fast, slow)
	}
	if fast.dataSet {
		data, err := dataString(slow.Data)
		if err != nil || data != fast.data {
			t.Fatalf("body %q: fast data %q, encoding/json %q (%v)", body, fast.data, data, err)
		}
	}
	ef, errf := parseEvent(fuzzApp, fast, index, nil)
	es, errs := parseEvent(fuzzApp, slow, index, nil)
	if (errf == nil) != (errs == nil) || (errf != nil && errf.Error() != errs.Error()) || !reflect.DeepEqual(ef, es) {
		t.Fatalf("body %q: parseEvent fast %+v %v, encoding/json %+v %v", body, ef, errf, es, errs)
	}
}

// sameChannels: the fast decoder keeps the first MaxTriggerChannels names
// and counts the others.
func sameChannels(fast, slow *eventBody) bool {
	if len(slow.Channels) <= MaxTriggerChannels {
		return fast.channelsOver == 0 && reflect.DeepEqual(fast.Channels, slow.Channels)
	}
	return reflect.DeepEqual(fast.Channels, slow.Channels[:MaxTriggerChannels]) &&
		fast.channelsOver == len(slow.Channels)-MaxTriggerChannels
}

// A channel list over the limit is refused as encoding/json's reading of
// it is, with the count, though the fast reading kept only the names it
// could use; the names it skips are checked all the same.
func TestDecodeOverlongChannels(t *testing.T) {
	for _, n := range []int{MaxTriggerChannels, MaxTriggerChannels + 1, 5000} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf(`"ch-%d"`, i)
		}
		for _, last := range []string{"", `,"x\ty"`, `,"a\qb"`} {
			body := `{"name":"e","data":"d","channels":[` + strings.Join(names, ",") + last + `]}`
			var fast, slow eventBody
			okFast := decodeEventFast([]byte(body), &fast)
			errSlow := decodeBody([]byte(body), &slow)
			if okFast != (errSlow == nil) {
				t.Fatalf("%d channels, then %q: fast reading %v, encoding/json %v", n, last, okFast, errSlow)
			}
			if !okFast {
				continue
			}
			if len(fast.Channels) > MaxTriggerChannels {
				t.Fatalf("%d channels: %d kept", n, len(fast.Channels))
			}
			sameEvent(t, body, &fast, &slow, -1)
			total := n + strings.Count(last, ",")
			_, err := parseEvent(fuzzApp, &fast, -1, nil)
			if want := fmt.Sprintf("at most %d channels, not %d", MaxTriggerChannels, total); total > MaxTriggerChannels && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Fatalf("%d channels: %v, want a refusal saying %q", total, err, want)
			}
		}
	}
}

// FuzzDecodeEvent holds decodeEventFast to encoding/json: whatever body it
// takes, encoding/json takes too, with the same event.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var fast eventBody
		if !decodeEventFast([]byte(body), &fast) {
			return
		}
		var slow eventBody
		if err := decodeBody([]byte(body), &slow); err != nil {
			t.Fatalf("body %q: decodeEventFast took it, encoding/json: %v", body, err)
		}
		sameEvent(t, body, &fast, &slow, -1)
	})
}

// FuzzDecodeBatch is FuzzDecodeEvent for batches.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(`{"batch":[]}`)
	f.Add(`{"batch":[{}]}`)
	f.Add(`{"batch":null}`)
	f.Add(`{"batch":[` + decodeSeeds[0] + `,` + decodeSeeds[1] + `]}`)
	f.Add(` {"batch" : [ ` + decodeSeeds[2] + ` ] } `)
	f.Add(`{"batch":[` + decodeSeeds[5] + `],"batch":[]}`)
	f.Add(`{"batch":[{},{},{"name":"a"},{"name":"e","data":"x","channel":"c"},{"data":"y"}]}`)
	f.Add(`{"Batch":[{},null,{}],"batcH":[{"data":{"x":[1]}}],"other":[1]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var slow batchBody
		slowErr := decodeBody([]byte(body), &slow)
		// batchLen counts what encoding/json decodes, for any body it takes.
		if count, ok := batchLen([]byte(body)); slowErr == nil && (!ok || count != len(slow.Batch)) {
			t.Fatalf("body %q: batchLen %d %v, encoding/json %d events", body, count, ok, len(slow.Batch))
		}
		fast, n, ok := decodeBatchFast([]byte(body), maxFuzzBatch)
		if !ok {
			return
		}
		if slowErr != nil {
			t.Fatalf("body %q: decodeBatchFast took it, encoding/json: %v", body, slowErr)
		}
		if n != len(slow.Batch) || len(fast) != min(n, maxFuzzBatch) || (fast == nil) != (slow.Batch == nil) {
			t.Fatalf("body %q: fast %d events of %d, encoding/json %d", body, len(fast), n, len(slow.Batch))
		}
		for i := range fast {
			sameEvent(t, body, &fast[i], &slow.Batch[i], i)
		}
	})
}

// maxFuzzBatch is the batch limit of FuzzDecodeBatch: small, so that
// fuzzed batches go over it.
const maxFuzzBatch = 3

// TestEventBodyAllFields: every field the fast decoder reads lands where
// encoding/json puts it, so a renamed JSON tag cannot go unnoticed.
func TestEventBodyAllFields(t *testing.T) {
	var b eventBody
	if err := json.Unmarshal([]byte(`{"name":"n","data":"d","channel":"c","channels":["x"],"socket_id":"1.2","info":"i"}`), &b); err != nil {
		t.Fatal(err)
	}
	var f eventBody
	if !decodeEventFast([]byte(`{"name":"n","data":"d","channel":"c","channels":["x"],"socket_id":"1.2","info":"i"}`), &f) {
		t.Fatal("decodeEventFast declined")
	}
	sameEvent(t, "all fields", &f, &b, -1)
}
