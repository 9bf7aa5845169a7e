//! An Arrow [`RecordBatch`](arrow_array::RecordBatch) as a [`RowSource`]:
//! string columns (`Utf8`, `LargeUtf8`, `Utf8View`, dictionaries of them),
//! lists of strings, timestamps of any unit with or without a zone,
//! integers and booleans.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use super::error::At;
use super::source::{parse_bool, RowSource, Want};
use super::timefmt::TimeSpec;
use crate::time::Timestamp;

/// A string column, whatever its physical type.
pub(crate) enum Strs<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Dict {
        array: &'a dyn Array,
        keys: Vec<usize>,
        values: Box<Strs<'a>>,
    },
}

impl<'a> Strs<'a> {
    pub(crate) fn of(a: &'a dyn Array) -> Option<Self> {
        Some(match a.data_type() {
            DataType::Utf8 => Strs::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
            DataType::Utf8View => Strs::View(a.as_string_view()),
            DataType::Dictionary(_, v) if is_str(v) => {
                let d = a.as_any_dictionary_opt()?;
                Strs::Dict {
                    array: a,
                    keys: d.normalized_keys(),
                    values: Box::new(Strs::of(d.values().as_ref())?),
                }
            }
            _ => return None,
        })
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Dict {
                array,
                keys,
                values,
            } => {
                if array.is_null(i) {
                    None
                } else {
                    values.get(keys[i])
                }
            }
        }
    }
}

fn is_str(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_str(v))
}

enum Col<'a> {
    Str(Strs<'a>),
    /// A list: the list array (for nulls and offsets) and its string values.
    List {
        array: &'a dyn Array,
        offsets: Vec<usize>,
        values: Strs<'a>,
    },
    Time {
        array: &'a dyn Array,
        values: &'a [i64],
        unit_ns: i64,
        zoned: bool,
    },
    Int(&'a dyn Array),
    Bool(&'a arrow_array::BooleanArray),
    /// A column of a type no field reads (never bound).
    Unreadable,
}

/// What a cell accessor says when called on a column bound for another use
/// (a bug in the caller, not in the input).
const UNBOUND: &str = "internal error: column read for a use it was not bound for";

fn list_of(a: &dyn Array) -> Option<Col<'_>> {
    let (offsets, values): (Vec<usize>, &ArrayRef) = match a.data_type() {
        DataType::List(f) if is_str(f.data_type()) => {
            let l = a.as_list::<i32>();
            (
                l.value_offsets().iter().map(|&o| o as usize).collect(),
                l.values(),
            )
        }
        DataType::LargeList(f) if is_str(f.data_type()) => {
            let l = a.as_list::<i64>();
            (
                l.value_offsets().iter().map(|&o| o as usize).collect(),
                l.values(),
            )
        }
        _ => return None,
    };
    Some(Col::List {
        array: a,
        offsets,
        values: Strs::of(values.as_ref())?,
    })
}

fn time_of(a: &dyn Array) -> Option<Col<'_>> {
    use arrow_array::types::*;
    let DataType::Timestamp(unit, tz) = a.data_type() else {
        return None;
    };
    let (values, unit_ns): (&[i64], i64) = match unit {
        TimeUnit::Second => (
            a.as_primitive::<TimestampSecondType>().values(),
            1_000_000_000,
        ),
        TimeUnit::Millisecond => (
            a.as_primitive::<TimestampMillisecondType>().values(),
            1_000_000,
        ),
        TimeUnit::Microsecond => (a.as_primitive::<TimestampMicrosecondType>().values(), 1_000),
        TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().values(), 1),
    };
    Some(Col::Time {
        array: a,
        values,
        unit_ns,
        zoned: tz.is_some(),
    })
}

fn col_of(a: &dyn Array) -> Option<Col<'_>> {
    match a.data_type() {
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            Some(Col::Int(a))
        }
        DataType::Boolean => Some(Col::Bool(a.as_boolean())),
        DataType::Timestamp(..) => time_of(a),
        DataType::List(_) | DataType::LargeList(_) => list_of(a),
        _ => Strs::of(a).map(Col::Str),
    }
}

fn int_at(a: &dyn Array, i: usize) -> String {
    match a.data_type() {
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).to_string(),
        _ => a.as_primitive::<UInt64Type>().value(i).to_string(),
    }
}

/// The rows of one Arrow batch, the first at position `first_row` of its
/// file or stream.
pub(crate) struct BatchRows<'a> {
    file: &'a str,
    first_row: u64,
    batch: &'a RecordBatch,
    cols: Vec<Option<Col<'a>>>,
}

impl<'a> BatchRows<'a> {
    pub(crate) fn new(file: &'a str, first_row: u64, batch: &'a RecordBatch) -> Self {
        let cols = batch.columns().iter().map(|c| col_of(c.as_ref())).collect();
        BatchRows {
            file,
            first_row,
            batch,
            cols,
        }
    }

    fn col(&self, i: usize) -> &Col<'a> {
        // `bind` handed out `i` only for a readable column.
        self.cols[i].as_ref().unwrap_or(&Col::Unreadable)
    }
}

impl RowSource for BatchRows<'_> {
    fn len(&self) -> usize {
        self.batch.num_rows()
    }

    fn file(&self) -> &str {
        self.file
    }

    fn at(&self, row: usize) -> At {
        At::Row(self.first_row + row as u64)
    }

    fn bind(&self, name: &str, want: Want) -> Result<usize, String> {
        let schema = self.batch.schema();
        let i = schema
            .index_of(name)
            .map_err(|_| "no such column".to_string())?;
        let ok = matches!(
            (&self.cols[i], want),
            (Some(Col::Str(_)), _)
                | (Some(Col::List { .. }), Want::Strs)
                | (Some(Col::Int(_)), Want::Str)
                | (Some(Col::Time { .. }), Want::Time)
                | (Some(Col::Bool(_)), Want::Bool)
        );
        if ok {
            Ok(i)
        } else {
            Err(format!(
                "the column is {}; the field needs {}",
                schema.field(i).data_type(),
                want.describe()
            ))
        }
    }

    fn column_names(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn str(&self, col: usize, row: usize) -> Result<Option<Cow<'_, str>>, String> {
        Ok(match self.col(col) {
            Col::Str(s) => s.get(row).filter(|v| !v.is_empty()).map(Cow::Borrowed),
            Col::Int(a) => (!a.is_null(row)).then(|| Cow::Owned(int_at(*a, row))),
            _ => return Err(UNBOUND.into()),
        })
    }

    fn each_str<'s>(
        &'s self,
        col: usize,
        row: usize,
        f: &mut dyn FnMut(&'s str),
    ) -> Result<(), String> {
        match self.col(col) {
            Col::Str(s) => {
                if let Some(v) = s.get(row) {
                    f(v);
                }
            }
            Col::List {
                array,
                offsets,
                values,
            } => {
                if !array.is_null(row) {
                    for i in offsets[row]..offsets[row + 1] {
                        if let Some(v) = values.get(i) {
                            f(v);
                        }
                    }
                }
            }
            _ => return Err(UNBOUND.into()),
        }
        Ok(())
    }

    fn time(&self, col: usize, row: usize, spec: &TimeSpec) -> Result<Option<Timestamp>, String> {
        match self.col(col) {
            Col::Time {
                array,
                values,
                unit_ns,
                zoned,
            } => {
                if array.is_null(row) {
                    return Ok(None);
                }
                spec.timestamp_value(values[row], *unit_ns, *zoned)
                    .map(Some)
            }
            Col::Str(s) => match s.get(row).filter(|v| !v.trim().is_empty()) {
                Some(v) => spec.parse_text(v).map(Some),
                None => Ok(None),
            },
            _ => Err(UNBOUND.into()),
        }
    }

    fn bool(&self, col: usize, row: usize) -> Result<Option<bool>, String> {
        match self.col(col) {
            Col::Bool(a) => Ok((!a.is_null(row)).then(|| a.value(row))),
            Col::Str(s) => s
                .get(row)
                .filter(|v| !v.trim().is_empty())
                .map(parse_bool)
                .transpose(),
            _ => Err(UNBOUND.into()),
        }
    }
}
