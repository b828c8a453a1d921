package app

import (
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// HistoryJSON reads a whole workflow history into the JSON form the `temporal`
// CLI writes and replay tests read.
func HistoryJSON(it client.HistoryEventIterator) ([]byte, error) {
	var h history.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, ev)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
}
