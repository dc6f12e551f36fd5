//! The 22 SI derived units the original system seeded as measure types, in its order.

/// `(name, symbol, quantity)` of each seeded measure type.
pub const SI_DERIVED_UNITS: [(&str, &str, &str); 22] = [
    ("hertz", "Hz", "frequency"),
    ("radian", "rad", "angle"),
    ("steradian", "sr", "solid angle"),
    ("newton", "N", "force, weight"),
    ("pascal", "Pa", "pressure, stress"),
    ("joule", "J", "energy, work, heat"),
    ("watt", "W", "power, radiant flux"),
    ("coulomb", "C", "electric charge or quantity of electricity"),
    (
        "volt",
        "V",
        "voltage, electrical potential difference, electromotive force",
    ),
    ("farad", "F", "electrical capacitance"),
    ("ohm", "Ω", "electrical resistance, impedance, reactance"),
    ("siemens", "S", "electrical conductance"),
    ("weber", "Wb", "magnetic flux"),
    ("tesla", "T", "magnetic induction, magnetic flux density"),
    ("henry", "H", "electrical inductance"),
    ("degree Celsius", "°C", "temperature relative to 273.15 K"),
    ("lumen", "lm", "luminous flux"),
    ("lux", "lx", "illuminance"),
    ("becquerel", "Bq", "radioactivity (decays per unit time)"),
    ("gray", "Gy", "absorbed dose (of ionizing radiation)"),
    ("sievert", "Sv", "equivalent dose (of ionizing radiation)"),
    ("katal", "kat", "catalytic activity"),
];
