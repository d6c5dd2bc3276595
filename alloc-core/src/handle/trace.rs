//! The `Trace` trait: how the collector finds the handles a value holds.

use super::{Handle, Tracer};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Visits every [`Handle`] a value owns.
///
/// # Safety
/// An implementation must call [`Tracer::visit`] exactly once for each `Handle` the value
/// owns directly or through owned data (a `Vec<Handle<T>>` visits each element), and for
/// no other handle: the collector subtracts one reference per visit, and a handle visited
/// but not owned (or owned but not visited) makes it free values that are still reachable
/// (or keep garbage). `trace` must not create or drop handles, and must give the same
/// answer each time it is called during one collection. A value that cannot be inspected
/// at the moment (a `RefCell` mutably borrowed) may skip its handles: they then count as
/// referenced from outside, which keeps them alive, never frees them early.
pub unsafe trait Trace {
    /// Calls `tracer.visit(h)` for each handle `h` this value owns.
    fn trace(&self, tracer: &mut Tracer<'_>);
}

// SAFETY: a handle owns exactly itself.
unsafe impl<T: Trace + 'static> Trace for Handle<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.visit(self);
    }
}

macro_rules! no_handles {
    ($($t:ty),*) => {$(
        // SAFETY: this type owns no handle.
        unsafe impl Trace for $t {
            #[inline]
            fn trace(&self, _: &mut Tracer<'_>) {}
        }
    )*};
}

no_handles!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    (),
    String,
    str,
    &'static str
);

// SAFETY: a `Cell` of a `Copy` type owns no handle (handles are not `Copy`).
unsafe impl<T: Copy> Trace for Cell<T> {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

// SAFETY: forwards to the boxed value, which the box owns.
unsafe impl<T: Trace + ?Sized> Trace for Box<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        (**self).trace(tracer);
    }
}

// SAFETY: an option owns its value, if any.
unsafe impl<T: Trace> Trace for Option<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(v) = self {
            v.trace(tracer);
        }
    }
}

// SAFETY: a result owns whichever value it holds.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        match self {
            Ok(v) => v.trace(tracer),
            Err(e) => e.trace(tracer),
        }
    }
}

// SAFETY: a vector owns its elements.
unsafe impl<T: Trace> Trace for Vec<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.iter().for_each(|v| v.trace(tracer));
    }
}

// SAFETY: a slice (behind a Box) owns its elements.
unsafe impl<T: Trace> Trace for [T] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.iter().for_each(|v| v.trace(tracer));
    }
}

// SAFETY: an array owns its elements.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.iter().for_each(|v| v.trace(tracer));
    }
}

// SAFETY: a deque owns its elements.
unsafe impl<T: Trace> Trace for VecDeque<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.iter().for_each(|v| v.trace(tracer));
    }
}

// SAFETY: a map owns its keys and values.
unsafe impl<K: Trace, V: Trace, S> Trace for HashMap<K, V, S> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        for (k, v) in self {
            k.trace(tracer);
            v.trace(tracer);
        }
    }
}

// SAFETY: a map owns its keys and values.
unsafe impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        for (k, v) in self {
            k.trace(tracer);
            v.trace(tracer);
        }
    }
}

// SAFETY: a RefCell owns its value. When it is mutably borrowed the value cannot be read:
// its handles are then skipped, which counts them as referenced from outside (the
// contract allows it: it keeps them alive).
unsafe impl<T: Trace + ?Sized> Trace for RefCell<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Ok(v) = self.try_borrow() {
            v.trace(tracer);
        }
    }
}

macro_rules! tuple_trace {
    ($($name:ident),+) => {
        // SAFETY: a tuple owns its fields.
        unsafe impl<$($name: Trace),+> Trace for ($($name,)+) {
            #[allow(non_snake_case)]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                let ($($name,)+) = self;
                $($name.trace(tracer);)+
            }
        }
    };
}

tuple_trace!(A);
tuple_trace!(A, B);
tuple_trace!(A, B, C);
tuple_trace!(A, B, C, D);
