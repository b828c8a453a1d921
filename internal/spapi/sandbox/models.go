package sandbox

import (
	"bytes"
	_ "embed"
)

// ordersModel is Amazon's Orders API v2026-01-01 model, an unmodified copy
// (Apache-2.0; see models/NOTICE.md for the attribution).
//
//go:embed models/orders_2026-01-01.json
var ordersModel []byte

// OrdersModel returns a copy of the embedded model orders_2026-01-01.json
// (Swagger 2.0, Apache-2.0, Amazon.com, Inc.; see models/NOTICE.md).
func OrdersModel() []byte { return bytes.Clone(ordersModel) }

// feedsModel is Amazon's Feeds API v2021-06-30 model, an unmodified copy
// (Apache-2.0; see models/NOTICE.md for the attribution).
//
//go:embed models/feeds_2021-06-30.json
var feedsModel []byte

// FeedsModel returns a copy of the embedded model feeds_2021-06-30.json
// (Swagger 2.0, Apache-2.0, Amazon.com, Inc.; see models/NOTICE.md).
func FeedsModel() []byte { return bytes.Clone(feedsModel) }
