import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/**
 * Proves that prisma/schema.prisma and the committed migration SQL describe the same database,
 * without Prisma's schema engine: `npm run db:generate` writes the schema's DMMF (via
 * scripts/dmmf-generator.cjs); here it is compared with a freshly migrated database, table by
 * table: columns, types, nullability, defaults, primary keys, unique and plain indexes, foreign
 * keys with their actions, and enums.
 */
interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: "scalar" | "object" | "enum";
  type: string;
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUnique: boolean;
  isUpdatedAt: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { fields: string[] } | null;
}
interface DmmfIndex {
  model: string;
  type: "id" | "unique" | "normal" | "fulltext";
  dbName?: string | null;
  fields: Array<{ name: string }>;
}
interface Dmmf {
  datamodel: {
    models: DmmfModel[];
    enums: Array<{ name: string; values: Array<{ name: string }> }>;
    indexes: DmmfIndex[];
  };
}

const dmmf = JSON.parse(readFileSync(path.resolve("lib/generated/dmmf.json"), "utf8")) as Dmmf;

const SCALAR_TYPES: Record<string, string> = {
  String: "text",
  Int: "integer",
  BigInt: "bigint",
  Boolean: "boolean",
  DateTime: "timestamp(3) without time zone",
  Json: "jsonb",
  Float: "double precision",
  Decimal: "numeric(65,30)",
  Bytes: "bytea",
};
const NATIVE_TYPES: Record<string, (args: string[]) => string> = {
  Uuid: () => "uuid",
  Timestamptz: (a) => `timestamp(${a[0] ?? 6}) with time zone`,
  Text: () => "text",
  VarChar: (a) => (a[0] ? `character varying(${a[0]})` : "character varying"),
};

function expectedType(field: DmmfField): string {
  return baseType(field) + (field.isList ? "[]" : "");
}

function baseType(field: DmmfField): string {
  if (field.kind === "enum") return `"${field.type}"`; // format_type quotes mixed-case names
  if (field.nativeType) {
    const [name, args] = field.nativeType;
    const f = NATIVE_TYPES[name];
    if (!f) throw new Error(`add native type ${name} to the agreement test`);
    return f(args);
  }
  const t = SCALAR_TYPES[field.type];
  if (!t) throw new Error(`add scalar type ${field.type} to the agreement test`);
  return t;
}

const column = (m: DmmfModel, fieldName: string) => {
  const f = m.fields.find((x) => x.name === fieldName);
  return f?.dbName ?? fieldName;
};
const table = (m: DmmfModel) => m.dbName ?? m.name;

describe("schema.prisma and prisma/migrations agree", () => {
  let t: TestDatabase;
  let client: pg.Client;
  const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await client.query<T>(sql, params)).rows;

  beforeAll(async () => {
    t = await createTestDatabase({ migrate: "here" });
    client = new pg.Client({ connectionString: t.ownerUrl });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await t.drop();
  });

  it("has exactly the tables of the schema's models", async () => {
    const rows = await q<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1",
    );
    expect(rows.map((r) => r.tablename)).toEqual(dmmf.datamodel.models.map(table).sort());
  });

  it("has exactly the enums of the schema, with the same values in order", async () => {
    const rows = await q<{ typname: string; labels: string[] }>(
      `SELECT t.typname::text AS typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname ORDER BY 1`,
    );
    const expected = dmmf.datamodel.enums.map((e) => ({ typname: e.name, labels: e.values.map((v) => v.name) }));
    expect(rows).toEqual(expected.sort((a, b) => a.typname.localeCompare(b.typname)));
  });

  for (const model of dmmf.datamodel.models) {
    it(`${model.name}: columns, types, nullability and defaults`, async () => {
      const rows = await q<{ column_name: string; type: string; not_null: boolean; has_default: boolean; default_expr: string | null }>(
        `SELECT a.attname::text AS column_name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
                a.atthasdef AS has_default, pg_get_expr(d.adbin, d.adrelid) AS default_expr
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [table(model)],
      );
      const scalars = model.fields.filter((f) => f.kind !== "object");
      expect(rows.map((r) => r.column_name).sort()).toEqual(scalars.map((f) => f.dbName ?? f.name).sort());
      for (const f of scalars) {
        const row = rows.find((r) => r.column_name === (f.dbName ?? f.name))!;
        expect.soft(row.type, `${model.name}.${f.name} type`).toBe(expectedType(f));
        expect.soft(row.not_null, `${model.name}.${f.name} NOT NULL`).toBe(f.isRequired);
        // @updatedAt is set by Prisma Client; its column default is CURRENT_TIMESTAMP here, which is harmless.
        const schemaHasDefault = f.hasDefaultValue && !(f.default && typeof f.default === "object" && "name" in f.default && f.default.name === "uuid");
        expect.soft(row.has_default, `${model.name}.${f.name} has a database default`).toBe(schemaHasDefault || f.isUpdatedAt);
        if (f.default && typeof f.default === "object" && "name" in f.default) {
          const d = f.default as { name: string; args: unknown[] };
          if (d.name === "dbgenerated") expect.soft(row.default_expr).toBe(String(d.args[0]));
          if (d.name === "now") expect.soft(row.default_expr).toBe("CURRENT_TIMESTAMP");
          if (d.name === "autoincrement") expect.soft(row.default_expr).toMatch(/^nextval\(/);
        } else if (f.hasDefaultValue && f.kind === "enum") {
          expect.soft(row.default_expr).toBe(`'${String(f.default)}'::"${f.type}"`);
        } else if (f.hasDefaultValue && f.type === "Int") {
          expect.soft(row.default_expr).toBe(String(f.default));
        } else if (f.hasDefaultValue && f.type === "String") {
          expect.soft(row.default_expr).toBe(`'${String(f.default)}'::text`);
        } else if (f.hasDefaultValue && f.type === "Json") {
          expect.soft(row.default_expr).toBe(`'${String(f.default)}'::jsonb`);
        }
      }
    });

    it(`${model.name}: primary key, unique constraints and indexes`, async () => {
      const rows = await q<{ indexname: string; is_unique: boolean; is_primary: boolean; columns: string[] }>(
        `SELECT i.relname::text AS indexname, ix.indisunique AS is_unique, ix.indisprimary AS is_primary,
                array(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class c ON c.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = $1 ORDER BY 1`,
        [table(model)],
      );
      const expected = dmmf.datamodel.indexes
        .filter((ix) => ix.model === model.name)
        .map((ix) => {
          const cols = ix.fields.map((f) => column(model, f.name));
          const suffix = ix.type === "id" ? "pkey" : ix.type === "unique" ? "key" : "idx";
          return {
            indexname: ix.dbName ?? `${table(model)}_${ix.type === "id" ? "" : `${cols.join("_")}_`}${suffix}`,
            is_unique: ix.type !== "normal",
            is_primary: ix.type === "id",
            columns: cols,
          };
        });
      expect(rows).toEqual(expected.sort((a, b) => a.indexname.localeCompare(b.indexname)));
    });

    it(`${model.name}: foreign keys and their actions`, async () => {
      const rows = await q<{ conname: string; columns: string[]; ref_table: string; ref_columns: string[]; on_delete: string }>(
        `SELECT con.conname::text AS conname,
                array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o) AS columns,
                rc.relname::text AS ref_table,
                array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) AS ref_columns,
                con.confdeltype::text AS on_delete
         FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class rc ON rc.oid = con.confrelid
         WHERE con.contype = 'f' AND c.relname = $1 ORDER BY 1`,
        [table(model)],
      );
      const actions: Record<string, string> = { Cascade: "c", Restrict: "r", SetNull: "n", NoAction: "a", SetDefault: "d" };
      const expected = model.fields
        .filter((f) => f.kind === "object" && f.relationFromFields && f.relationFromFields.length > 0)
        .map((f) => {
          const target = dmmf.datamodel.models.find((m) => m.name === f.type)!;
          const cols = f.relationFromFields!.map((n) => column(model, n));
          const optional = model.fields.filter((x) => f.relationFromFields!.includes(x.name)).some((x) => !x.isRequired);
          return {
            conname: `${table(model)}_${cols.join("_")}_fkey`,
            columns: cols,
            ref_table: table(target),
            ref_columns: f.relationToFields!.map((n) => column(target, n)),
            on_delete: actions[f.relationOnDelete ?? (optional ? "SetNull" : "Restrict")],
          };
        });
      expect(rows).toEqual(expected.sort((a, b) => a.conname.localeCompare(b.conname)));
    });
  }
});
