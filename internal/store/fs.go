package store

import (
	"io/fs"

	"github.com/plusranger/dpp/schemas"
)

func mustSub() fs.FS {
	sub, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}
