// Package deps pins the modules other packages are about to use while they are
// being written; it is removed once every import is real.
package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/kms"
	_ "github.com/go-pdf/fpdf"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/pressly/goose/v3"
	_ "github.com/stretchr/testify/require"
	_ "go.temporal.io/api/enums/v1"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.uber.org/zap"
	_ "golang.org/x/image/font/gofont/goregular"
	_ "golang.org/x/time/rate"
)
