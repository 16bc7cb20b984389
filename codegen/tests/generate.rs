//! The generator on small spec fragments: the code it writes (snapshots in `snapshots/`,
//! reviewed with `cargo insta review`), and one test per refused construct, asserting the
//! JSON pointer it names and the advice it gives.

/// A whole document around `paths` and extra component `schemas` (YAML, indented as under
/// `paths:` and `components: schemas:`). It has what every spec needs: the `Problem` schema,
/// one tag, a security scheme.
fn spec(paths: &str, schemas: &str) -> String {
    format!(
        r#"openapi: 3.0.3
info:
  title: fragment
  version: 1.0.0
servers:
  - url: /
tags:
  - name: Items
    description: Items.
security:
  - Seller: []
paths:
{paths}
components:
  securitySchemes:
    Seller:
      type: apiKey
      in: header
      name: X-Seller-Id
  schemas:
    Problem:
      type: object
      required: [status, message]
      properties:
        status:
          type: integer
          format: int32
        message:
          type: string
{schemas}
"#
    )
}

/// An operation's `responses:` with the 500 every operation declares.
const ERRORS: &str = r#"        '500':
          description: Failed.
          content:
            application/problem+json:
              schema:
                $ref: '#/components/schemas/Problem'"#;

fn generate(paths: &str, schemas: &str) -> codegen::Generated {
    match codegen::generate("fragment.yaml", &spec(paths, schemas)) {
        Ok(g) => g,
        Err(e) => panic!("the fragment is refused: {e}"),
    }
}

fn generated(paths: &str, schemas: &str) -> String {
    generate(paths, schemas).code
}

fn refused(document: &str) -> codegen::Error {
    match codegen::generate("fragment.yaml", document) {
        Ok(_) => panic!("the fragment was accepted"),
        Err(e) => e,
    }
}

fn get_items(parameters: &str) -> String {
    format!(
        r#"  /items:
    get:
      tags: [Items]
      operationId: listItems
      summary: List items
{parameters}
      responses:
        '200':
          description: The items.
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Item'
{ERRORS}"#
    )
}

const ITEM: &str = r#"    Item:
      type: object
      required: [name, price]
      properties:
        name:
          type: string
          minLength: 1
          maxLength: 20
          pattern: '^[a-z]+$'
        price:
          type: number
          format: double
          exclusiveMinimum: true
          minimum: 0
          multipleOf: 0.01
        quantity:
          type: integer
          format: int32
          minimum: 0
          nullable: true
        colour:
          type: string
          enum: [red, blue]
        tags:
          type: array
          maxItems: 3
          items:
            type: string"#;

#[test]
fn a_model_with_its_validation() {
    let g = generate(&get_items(""), ITEM);
    insta::assert_snapshot!(g.code);
    insta::assert_snapshot!("a_model_with_its_validation_rules", g.rules);
}

#[test]
fn an_operation_with_query_header_and_path_parameters() {
    let paths = r#"  /items/{id}:
    get:
      tags: [Items]
      operationId: getItem
      summary: Get an item
      parameters:
        - name: id
          in: path
          required: true
          schema:
            type: integer
            format: int64
        - name: limit
          in: query
          allowEmptyValue: true
          schema:
            type: integer
            format: int32
            minimum: 1
            default: 20
        - name: q
          in: query
          allowEmptyValue: true
          schema:
            type: string
            maxLength: 10
        - name: If-None-Match
          in: header
          schema:
            type: string
      responses:
        '200':
          description: The item.
          headers:
            ETag:
              required: true
              schema:
                type: string
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Item'
        '304':
          description: Unchanged.
"#;
    insta::assert_snapshot!(generated(&format!("{paths}{ERRORS}"), ITEM));
}

#[test]
fn an_upload_and_a_csv_response() {
    let paths = format!(
        r#"  /items/import:
    post:
      tags: [Items]
      operationId: importItems
      summary: Import items
      x-rate-limit-class: bulk
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              maxProperties: 1
              required: [file]
              properties:
                file:
                  type: string
                  format: binary
          text/csv:
            schema:
              type: string
              format: binary
      responses:
        '204':
          description: Imported.
{ERRORS}
  /items/export:
    get:
      tags: [Items]
      operationId: exportItems
      summary: Export items
      responses:
        '200':
          description: The items as CSV.
          content:
            text/csv:
              schema:
                type: string
                format: binary
{ERRORS}"#
    );
    insta::assert_snapshot!(generated(&paths, ""));
}

/// A refused construct: where the generator points, and what it says to do.
macro_rules! refuses {
    ($name:ident, $document:expr, $pointer:expr, $advice:expr) => {
        #[test]
        fn $name() {
            let e = refused(&$document);
            assert_eq!(e.pointer, $pointer, "{e}");
            assert!(e.message.contains($advice), "advice {:?} in {e}", $advice);
        }
    };
}

refuses!(
    a_query_parameter_without_allow_empty_value,
    spec(&get_items("      parameters:\n        - name: q\n          in: query\n          schema:\n            type: string"), ITEM),
    "/paths/~1items/get/parameters/0",
    "allowEmptyValue: true"
);

refuses!(
    a_cookie_parameter,
    spec(&get_items("      parameters:\n        - name: session\n          in: cookie\n          schema:\n            type: string"), ITEM),
    "/paths/~1items/get/parameters/0",
    "only query (form), header (simple) and path (simple)"
);

refuses!(
    a_parameter_example,
    spec(&get_items("      parameters:\n        - name: q\n          in: query\n          allowEmptyValue: true\n          example: abc\n          schema:\n            type: string"), ITEM),
    "/paths/~1items/get/parameters/0/example",
    "describe the value in `description`"
);

refuses!(
    an_operation_without_an_operation_id,
    spec(
        &get_items("").replace("      operationId: listItems\n", ""),
        ITEM
    ),
    "/paths/~1items/get",
    "every operation needs an operationId"
);

refuses!(
    an_operation_with_two_tags,
    spec(
        &get_items("").replace("tags: [Items]", "tags: [Items, More]"),
        ITEM
    ),
    "/paths/~1items/get/tags",
    "exactly one tag"
);

refuses!(
    an_operation_without_a_500,
    spec(&get_items("").replace(ERRORS, ""), ITEM),
    "/paths/~1items/get/responses",
    "500"
);

refuses!(
    a_two_paragraph_summary,
    spec(
        &get_items("").replace("summary: List items", "summary: \"List\\n\\nitems\""),
        ITEM
    ),
    "/paths/~1items/get/summary",
    "one paragraph"
);

refuses!(
    an_integer_without_a_format,
    spec(
        &get_items(""),
        &ITEM.replace("          format: int32\n", "")
    ),
    "/components/schemas/Item/properties/quantity/format",
    "integers need `format: int32` or `format: int64`"
);

refuses!(
    a_multiple_of_that_is_not_a_power_of_ten,
    spec(
        &get_items(""),
        &ITEM.replace("multipleOf: 0.01", "multipleOf: 0.25")
    ),
    "/components/schemas/Item/properties/price/multipleOf",
    "power of ten"
);

refuses!(
    a_ref_outside_the_component_schemas,
    spec(
        &get_items("").replace("#/components/schemas/Item", "other.yaml#/Item"),
        ITEM
    ),
    "/paths/~1items/get/responses/200/content/application~1json/schema",
    "only #/components/schemas/*"
);

refuses!(
    a_spec_without_the_problem_schema,
    spec(&get_items(""), ITEM).replace("    Problem:", "    Trouble:"),
    "/components/schemas",
    "missing schema `Problem`"
);

refuses!(
    validation_on_array_items,
    spec(&get_items(""), ITEM).replace(
        "          items:\n            type: string\n",
        "          items:\n            type: string\n            maxLength: 8\n"
    ),
    "/components/schemas/Item/properties/tags/items",
    "move the item to components/schemas"
);

refuses!(
    the_caller_on_a_secured_operation,
    spec(
        &get_items("").replace(
            "      summary: List items\n",
            "      summary: List items\n      x-caller: true\n"
        ),
        ITEM
    ),
    "/paths/~1items/get/x-caller",
    "security: []"
);

/// `spec` with a bearer scheme that declares scopes, offered beside the header as an
/// alternative.
fn scoped(paths: &str) -> String {
    spec(paths, ITEM)
        .replace("security:\n  - Seller: []\n", "security:\n  - Seller: []\n  - Token: []\n")
        .replace(
            "  securitySchemes:\n",
            "  securitySchemes:\n    Token:\n      type: http\n      scheme: bearer\n      bearerFormat: JWT\n      x-scopes:\n        items:read: Read items.\n",
        )
}

const FORBIDDEN: &str = r#"        '403':
          description: Not allowed.
          content:
            application/problem+json:
              schema:
                $ref: '#/components/schemas/Problem'
"#;

fn scoped_get_items(extra: &str) -> String {
    get_items("").replace(
        "      summary: List items\n",
        &format!("      summary: List items\n{extra}"),
    )
}

#[test]
fn alternative_schemes_and_a_scope_checked_before_the_handler() {
    let paths = scoped_get_items("      x-scope: items:read\n").replace(
        "      responses:\n",
        &format!("      responses:\n{FORBIDDEN}"),
    );
    match codegen::generate("fragment.yaml", &scoped(&paths)) {
        Ok(g) => insta::assert_snapshot!(g.code),
        Err(e) => panic!("the fragment is refused: {e}"),
    }
}

refuses!(
    a_scoped_spec_with_an_operation_that_names_no_scope,
    scoped(&scoped_get_items("").replace(
        "      responses:\n",
        &format!("      responses:\n{FORBIDDEN}")
    )),
    "/paths/~1items/get/x-scope",
    "names its scope"
);

refuses!(
    a_scope_no_scheme_declares,
    scoped(&scoped_get_items("      x-scope: items:write\n").replace(
        "      responses:\n",
        &format!("      responses:\n{FORBIDDEN}")
    )),
    "/paths/~1items/get/x-scope",
    "not among the scopes"
);

refuses!(
    a_scope_without_a_declared_403,
    scoped(&scoped_get_items("      x-scope: items:read\n")),
    "/paths/~1items/get/responses",
    "must declare the 403"
);

refuses!(
    scopes_in_a_security_requirement,
    scoped(&scoped_get_items("      x-scope: items:read\n"))
        .replace("  - Token: []\n", "  - Token: [items:read]\n"),
    "/security/1",
    "x-scope"
);

refuses!(
    two_schemes_in_one_requirement,
    spec(&get_items(""), ITEM).replace("  - Seller: []\n", "  - Seller: []\n    Other: []\n"),
    "/security/0",
    "exactly one scheme"
);
