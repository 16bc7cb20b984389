//! Integer and number schemas: their Rust types (`i32`/`i64`, `f64`, fixed-scale decimals)
//! and bounds, and the `not: {enum: [0]}` an integer may exclude.

use crate::prelude::*;

/// An integer with `not: {enum: [...]}` beside its type: values the range allows but the
/// service refuses (a zero delta). poem-openapi has no such validator, so the service checks
/// them (with the spec's constraint in the error); the rest is generated as for any integer.
pub(crate) fn integer_except(any: &AnySchema, ptr: &str) -> Result<Typed> {
    let unsupported = || {
        err(
            ptr,
            "oneOf/allOf/anyOf/not and untyped schemas are not supported; give the schema a `type` (an integer may exclude values with `not: {enum: [...]}`)",
        )
    };
    let Some(not) = &any.not else {
        return unsupported();
    };
    let plain = AnySchema {
        typ: any.typ.clone(),
        format: any.format.clone(),
        multiple_of: any.multiple_of,
        exclusive_minimum: any.exclusive_minimum,
        exclusive_maximum: any.exclusive_maximum,
        minimum: any.minimum,
        maximum: any.maximum,
        not: any.not.clone(),
        ..AnySchema::default()
    };
    if any.typ.as_deref() != Some("integer") || *any != plain {
        return unsupported();
    }
    let excluded = match not.as_ref() {
        ReferenceOr::Item(Schema {
            schema_kind: SchemaKind::Any(a),
            ..
        }) if *a
            == AnySchema {
                enumeration: a.enumeration.clone(),
                ..AnySchema::default()
            } =>
        {
            &a.enumeration
        }
        _ => {
            return err(
                &format!("{ptr}/not"),
                "only `not: {enum: [integers]}` is supported",
            )
        }
    };
    if excluded.is_empty() || !excluded.iter().all(|v| v.is_i64()) {
        return err(&format!("{ptr}/not/enum"), "list the excluded integers");
    }
    let format = match any.format.as_deref() {
        Some("int32") => VariantOrUnknownOrEmpty::Item(IntegerFormat::Int32),
        Some("int64") => VariantOrUnknownOrEmpty::Item(IntegerFormat::Int64),
        _ => VariantOrUnknownOrEmpty::Empty,
    };
    let whole = |v: f64| v as i64;
    integer_type(
        &IntegerType {
            format,
            multiple_of: any.multiple_of.map(whole),
            exclusive_minimum: any.exclusive_minimum.unwrap_or(false),
            exclusive_maximum: any.exclusive_maximum.unwrap_or(false),
            minimum: any.minimum.map(whole),
            maximum: any.maximum.map(whole),
            enumeration: Vec::new(),
        },
        ptr,
    )
}

pub(crate) fn integer_type(i: &IntegerType, ptr: &str) -> Result<Typed> {
    let (ty, bits) = match &i.format {
        VariantOrUnknownOrEmpty::Item(IntegerFormat::Int32) => (quote!(i32), 32u8),
        VariantOrUnknownOrEmpty::Item(IntegerFormat::Int64) => (quote!(i64), 64u8),
        _ => {
            return err(
                &format!("{ptr}/format"),
                "integers need `format: int32` or `format: int64`",
            )
        }
    };
    if !i.enumeration.is_empty() {
        return err(&format!("{ptr}/enum"), "integer enums are not supported");
    }
    let mut validators = Vec::new();
    if let Some(m) = i.multiple_of {
        let m = f64_lit(m as f64);
        validators.push(quote!(multiple_of = #m));
    }
    if let Some(v) = i.minimum {
        let v = bound_lit(v as f64);
        let ex = i.exclusive_minimum;
        validators.push(quote!(minimum(value = #v, exclusive = #ex)));
    }
    if let Some(v) = i.maximum {
        let v = bound_lit(v as f64);
        let ex = i.exclusive_maximum;
        validators.push(quote!(maximum(value = #v, exclusive = #ex)));
    }
    let k = runtime::rule_kind();
    let min = opt_f64(i.minimum.map(|v| v as f64), i.exclusive_minimum);
    let max = opt_f64(i.maximum.map(|v| v as f64), i.exclusive_maximum);
    let kind = quote!(#k::Integer { bits: #bits, minimum: #min, maximum: #max });
    Ok(Typed {
        ty,
        validators,
        kind,
    })
}

pub(crate) fn number_type(n: &NumberType, ptr: &str) -> Result<Typed> {
    let ty = match (&n.format, n.multiple_of) {
        // poem-openapi's multipleOf uses a float remainder (it rejects 29.99 for 0.01), so
        // decimal steps map to the runtime's `Decimal<SCALE>`, which renders the same keyword.
        (VariantOrUnknownOrEmpty::Item(NumberFormat::Double), Some(step)) => {
            let Some(scale) =
                (0..=9u32).find(|k| (step - 1.0 / 10f64.powi(*k as i32)).abs() < 1e-12)
            else {
                return err(
                    &format!("{ptr}/multipleOf"),
                    "multipleOf on numbers must be a power of ten (1, 0.1, 0.01, …)",
                );
            };
            let scale = Literal::u32_unsuffixed(scale);
            let decimal = runtime::decimal();
            quote!(#decimal<#scale>)
        }
        (VariantOrUnknownOrEmpty::Item(NumberFormat::Double), None) => quote!(f64),
        (VariantOrUnknownOrEmpty::Item(NumberFormat::Float), None) => quote!(f32),
        (VariantOrUnknownOrEmpty::Item(NumberFormat::Float), Some(_)) => {
            return err(
                &format!("{ptr}/multipleOf"),
                "multipleOf needs `format: double`",
            );
        }
        _ => {
            return err(
                &format!("{ptr}/format"),
                "numbers need `format: double` or `format: float`",
            )
        }
    };
    if !n.enumeration.is_empty() {
        return err(&format!("{ptr}/enum"), "number enums are not supported");
    }
    let mut validators = Vec::new();
    if let Some(v) = n.minimum {
        let v = bound_lit(v);
        let ex = n.exclusive_minimum;
        validators.push(quote!(minimum(value = #v, exclusive = #ex)));
    }
    if let Some(v) = n.maximum {
        let v = bound_lit(v);
        let ex = n.exclusive_maximum;
        validators.push(quote!(maximum(value = #v, exclusive = #ex)));
    }
    let k = runtime::rule_kind();
    let min = opt_f64(n.minimum, n.exclusive_minimum);
    let max = opt_f64(n.maximum, n.exclusive_maximum);
    let multiple_of = match n.multiple_of {
        Some(m) => {
            let m = f64_lit(m);
            quote!(::std::option::Option::Some(#m))
        }
        None => quote!(::std::option::Option::None),
    };
    let kind = quote!(#k::Number { minimum: #min, maximum: #max, multiple_of: #multiple_of });
    Ok(Typed {
        ty,
        validators,
        kind,
    })
}
