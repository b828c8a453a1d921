// Package schemas holds the database migrations, embedded so the worker applies
// them at start, and the JSON Schemas of workflow inputs and signals.
package schemas

import "embed"

// Migrations are goose SQL migrations, applied in file-name order.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// JSONSchemas describe every workflow input and signal payload, for operators
// and for tools that build `temporal` CLI inputs.
//
//go:embed json/*.schema.json
var JSONSchemas embed.FS
