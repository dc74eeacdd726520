//! Realistic synthetic receipts in the shape of `004_3a8f2cbff66fe1fd.txt`: about 3 KB each, a chain of stores
//! (10,000 by default) across French cities, a product catalogue with categories and prices, loyalty cards on
//! some receipts, about 2% return lines, emission times over trading hours. Deterministic for a seed; the store
//! table and the catalogue do not depend on the seed, so `pipelines/stores.csv` fits every generated stream.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::decimal::decimal_to_value;

/// The chain's time zone: stores are in France.
pub const CHAIN_TIME_ZONE: &str = "Europe/Paris";

/// (city, region, latitude, longitude)
const CITIES: &[(&str, &str, f64, f64)] = &[
    ("Paris", "Île-de-France", 48.8566, 2.3522),
    ("Boulogne-Billancourt", "Île-de-France", 48.8397, 2.2399),
    ("Versailles", "Île-de-France", 48.8049, 2.1204),
    ("Marseille", "Provence-Alpes-Côte d'Azur", 43.2965, 5.3698),
    ("Nice", "Provence-Alpes-Côte d'Azur", 43.7102, 7.2620),
    ("Toulon", "Provence-Alpes-Côte d'Azur", 43.1242, 5.9280),
    ("Lyon", "Auvergne-Rhône-Alpes", 45.7640, 4.8357),
    ("Grenoble", "Auvergne-Rhône-Alpes", 45.1885, 5.7245),
    ("Clermont-Ferrand", "Auvergne-Rhône-Alpes", 45.7772, 3.0870),
    ("Toulouse", "Occitanie", 43.6047, 1.4442),
    ("Montpellier", "Occitanie", 43.6108, 3.8767),
    ("Nîmes", "Occitanie", 43.8367, 4.3601),
    ("Bordeaux", "Nouvelle-Aquitaine", 44.8378, -0.5792),
    ("Limoges", "Nouvelle-Aquitaine", 45.8336, 1.2611),
    ("Poitiers", "Nouvelle-Aquitaine", 46.5802, 0.3404),
    ("Nantes", "Pays de la Loire", 47.2184, -1.5536),
    ("Angers", "Pays de la Loire", 47.4784, -0.5632),
    ("Le Mans", "Pays de la Loire", 48.0061, 0.1996),
    ("Strasbourg", "Grand Est", 48.5734, 7.7521),
    ("Reims", "Grand Est", 49.2583, 4.0317),
    ("Metz", "Grand Est", 49.1193, 6.1757),
    ("Lille", "Hauts-de-France", 50.6292, 3.0573),
    ("Amiens", "Hauts-de-France", 49.8941, 2.2958),
    ("Rennes", "Bretagne", 48.1173, -1.6778),
    ("Brest", "Bretagne", 48.3904, -4.4861),
    ("Rouen", "Normandie", 49.4432, 1.0999),
    ("Caen", "Normandie", 49.1829, -0.3707),
    ("Dijon", "Bourgogne-Franche-Comté", 47.3220, 5.0415),
    ("Besançon", "Bourgogne-Franche-Comté", 47.2378, 6.0241),
    ("Tours", "Centre-Val de Loire", 47.3941, 0.6848),
    ("Orléans", "Centre-Val de Loire", 47.9030, 1.9093),
    ("Ajaccio", "Corse", 41.9192, 8.7386),
];

/// One sales manager per region.
const MANAGERS: &[(&str, &str)] = &[
    ("Île-de-France", "Camille Laurent"),
    ("Provence-Alpes-Côte d'Azur", "Lucas Moreau"),
    ("Auvergne-Rhône-Alpes", "Chloé Girard"),
    ("Occitanie", "Hugo Fournier"),
    ("Nouvelle-Aquitaine", "Léa Bonnet"),
    ("Pays de la Loire", "Nathan Roux"),
    ("Grand Est", "Manon Lefèvre"),
    ("Hauts-de-France", "Louis Mercier"),
    ("Bretagne", "Inès Garnier"),
    ("Normandie", "Jules Faure"),
    ("Bourgogne-Franche-Comté", "Zoé Chevalier"),
    ("Centre-Val de Loire", "Gabriel Blanc"),
    ("Corse", "Emma Santoni"),
];

/// (category, price range in cents, sold by weight, products)
type CategorySpec = (&'static str, (i64, i64), bool, &'static [&'static str]);

/// How often each category of [`CATEGORIES`] (same order) is on a receipt line, in parts per thousand: a
/// grocery chain sells bread and milk all day, a pair of headphones now and then.
const CATEGORY_SHARE: [u32; 17] = [170, 150, 130, 80, 40, 110, 40, 130, 50, 40, 30, 10, 10, 4, 10, 3, 3];
const _: () = assert!(CATEGORY_SHARE.len() == CATEGORIES.len(), "one share per category");
const CATEGORIES: &[CategorySpec] = &[
    (
        "Fruits & Vegetables",
        (89, 699),
        true,
        &[
            "Tomatoes",
            "Apples Golden",
            "Bananas",
            "Carrots",
            "Courgettes",
            "Clementines",
            "Potatoes, new",
            "Leeks",
            "Pears Conférence",
            "Avocados",
        ],
    ),
    (
        "Dairy",
        (59, 899),
        false,
        &[
            "Crème fraîche 30%",
            "Milk, semi-skimmed 1L",
            "Yoghurt nature x8",
            "Butter, salted 250g",
            "Comté \"18 mois\"",
            "Camembert de Normandie",
            "Emmental râpé",
            "Fromage blanc 3,2%",
        ],
    ),
    (
        "Bakery",
        (35, 749),
        false,
        &[
            "Baguette tradition",
            "Croissant",
            "Pain au chocolat",
            "Brioche tressée",
            "Pain de campagne",
            "Tarte aux pommes",
            "Éclair café",
        ],
    ),
    (
        "Meat",
        (299, 2899),
        true,
        &[
            "Entrecôte",
            "Poulet fermier",
            "Jambon, 4 tranches",
            "Saucisses de Toulouse",
            "Steak haché 5%",
            "Rôti de porc",
        ],
    ),
    (
        "Fish",
        (399, 3499),
        true,
        &["Saumon, pavé", "Cabillaud", "Crevettes roses", "Moules de bouchot", "Thon albacore"],
    ),
    (
        "Beverages",
        (49, 1299),
        false,
        &[
            "Eau minérale 6x1,5L",
            "Jus d'orange 1L",
            "Café moulu 250g",
            "Thé vert",
            "Soda cola 1,5L",
            "Bière blonde 6x25cl",
        ],
    ),
    (
        "Wine & Spirits",
        (399, 8999),
        false,
        &["Bordeaux rouge AOC", "Champagne brut", "Côtes du Rhône", "Chablis", "Cognac VS", "Rosé de Provence"],
    ),
    (
        "Grocery",
        (69, 1199),
        false,
        &[
            "Pâtes, coquillettes 500g",
            "Riz basmati 1kg",
            "Huile d'olive vierge",
            "Farine T55",
            "Sucre en morceaux",
            "Confiture fraise",
            "Chocolat noir 70%",
        ],
    ),
    (
        "Frozen",
        (149, 1499),
        false,
        &["Pizza 4 fromages", "Glace vanille", "Petits pois surgelés", "Frites au four", "Poisson pané"],
    ),
    (
        "Household",
        (99, 1999),
        false,
        &["Lessive liquide", "Papier toilette x12", "Liquide vaisselle", "Éponges x3", "Sacs poubelle 50L"],
    ),
    (
        "Hygiene & Beauty",
        (129, 2999),
        false,
        &["Shampooing", "Gel douche", "Dentifrice", "Crème hydratante", "Déodorant"],
    ),
    ("Baby", (199, 3999), false, &["Couches taille 3", "Lait infantile", "Petits pots légumes", "Lingettes x64"]),
    ("Pet", (149, 2999), false, &["Croquettes chat 2kg", "Litière", "Pâtée chien x4"]),
    (
        "Electronics",
        (999, 44999),
        false,
        &["Écouteurs sans fil", "Chargeur USB-C", "Ampoule LED", "Enceinte Bluetooth", "Clé USB 64 Go", "Casque audio"],
    ),
    ("Textile", (499, 7999), false, &["T-shirt coton", "Chaussettes x3", "Pull laine", "Jean slim", "Pyjama enfant"]),
    ("Garden", (299, 14999), false, &["Terreau 40L", "Plante verte", "Arrosoir", "Graines de tomates"]),
    ("Toys", (499, 9999), false, &["Puzzle 1000 pièces", "Jeu de société", "Peluche", "Briques de construction"]),
];

/// A product of the catalogue.
#[derive(Debug, Clone)]
pub struct Product {
    pub sku: String,
    pub ean: String,
    pub name: String,
    pub category: &'static str,
    pub unit_price: Decimal,
    pub by_weight: bool,
    pub vat_rate: Decimal,
}

/// A store of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    pub store_id: String,
    pub name: String,
    pub city: &'static str,
    pub region: &'static str,
    pub latitude: Decimal,
    pub longitude: Decimal,
    pub manager: &'static str,
}

/// The store id of the n-th store (1-based): `S00001`.
pub fn store_id(n: u32) -> String {
    format!("S{n:05}")
}

/// The n-th store (1-based). Independent of any seed.
pub fn store(n: u32) -> Store {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5704E ^ u64::from(n));
    let (city, region, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
    let manager = MANAGERS.iter().find(|(r, _)| *r == region).map_or("Unassigned", |(_, m)| m);
    let jitter = |rng: &mut ChaCha8Rng| rng.random_range(-400i64..=400);
    let latitude = Decimal::new((lat * 10_000.0).round() as i64 + jitter(&mut rng), 4);
    let longitude = Decimal::new((lon * 10_000.0).round() as i64 + jitter(&mut rng), 4);
    Store { store_id: store_id(n), name: format!("{city} #{n}"), city, region, latitude, longitude, manager }
}

/// The reference table of the first `stores` stores, as `stores.csv`.
pub fn store_table_csv(stores: u32) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["store_id", "name", "city", "region", "latitude", "longitude", "manager"]).expect("in memory");
    for n in 1..=stores {
        let s = store(n);
        w.write_record([
            s.store_id.as_str(),
            &s.name,
            s.city,
            s.region,
            &s.latitude.to_string(),
            &s.longitude.to_string(),
            s.manager,
        ])
        .expect("in memory");
    }
    String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

/// The product catalogue. Independent of any seed.
pub fn catalogue() -> Vec<Product> {
    let mut rng = ChaCha8Rng::seed_from_u64(0xCA7A);
    let mut products = Vec::new();
    for (c, (category, (lo, hi), by_weight, names)) in CATEGORIES.iter().enumerate() {
        for (p, name) in names.iter().enumerate() {
            for variant in 0..4 {
                let cents = rng.random_range(*lo..=*hi);
                let label = match variant {
                    0 => name.to_string(),
                    1 => format!("{name} bio"),
                    2 => format!("{name} - marque repère"),
                    _ => format!("{name} (lot x2)"),
                };
                let number = (c * 1000 + p * 10 + variant) as u64;
                products.push(Product {
                    sku: format!("SKU-{number:06}"),
                    ean: format!("3{:012}", number * 7919 % 1_000_000_000_000),
                    name: label,
                    category,
                    unit_price: Decimal::new(cents, 2),
                    by_weight: *by_weight,
                    vat_rate: if c < 9 { Decimal::new(55, 1) } else { Decimal::new(20, 0) },
                });
            }
        }
    }
    products
}

/// Deterministic receipt generator.
pub struct Generator {
    rng: ChaCha8Rng,
    stores: u32,
    products: Vec<Product>,
    /// Cumulative pick weights of `products`, so categories appear in their [`CATEGORY_SHARE`].
    cumulative_weight: Vec<u32>,
    zone: TimeZone,
}

impl Generator {
    pub fn new(seed: u64, stores: u32) -> Generator {
        let products = catalogue();
        let per_category = |category: &str| products.iter().filter(|p| p.category == category).count() as u32;
        let mut total = 0;
        let cumulative_weight = products
            .iter()
            .map(|p| {
                let c = CATEGORIES.iter().position(|spec| spec.0 == p.category).expect("a catalogue category");
                // Each product gets its category's share, split evenly (scaled to keep integer precision).
                total += CATEGORY_SHARE[c] * 1000 / per_category(p.category);
                total
            })
            .collect();
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            stores: stores.max(1),
            products,
            cumulative_weight,
            zone: TimeZone::get(CHAIN_TIME_ZONE).expect("bundled time zone"),
        }
    }

    /// A receipt from a random store, emitted at `at`.
    pub fn receipt_at(&mut self, at: Timestamp) -> Value {
        let store = self.rng.random_range(1..=self.stores);
        self.receipt_for(store, at)
    }

    /// A receipt from the given store (1-based), emitted at `at`, as JSON (~3 KB).
    pub fn receipt_for(&mut self, store: u32, at: Timestamp) -> Value {
        let rng = &mut self.rng;
        let emitted_at = at.to_zoned_datetime(self.zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
        let n_lines = rng.random_range(6..=26);
        let mut lines = Vec::with_capacity(n_lines);
        let mut total = Decimal::ZERO;
        for _ in 0..n_lines {
            let pick = rng.random_range(0..*self.cumulative_weight.last().expect("a catalogue"));
            let p = &self.products[self.cumulative_weight.partition_point(|&w| w <= pick)];
            let is_return = rng.random_bool(0.02);
            let quantity = if p.by_weight {
                Decimal::new(rng.random_range(150..=2500), 3)
            } else {
                Decimal::from(rng.random_range(1..=4))
            };
            let quantity = if is_return { -quantity } else { quantity };
            let mut line = Map::new();
            line.insert("sku".into(), p.sku.clone().into());
            line.insert("ean".into(), p.ean.clone().into());
            line.insert("name".into(), p.name.clone().into());
            line.insert("category".into(), p.category.into());
            line.insert("quantity".into(), decimal_to_value(quantity));
            line.insert("unit".into(), if p.by_weight { "kg" } else { "pce" }.into());
            line.insert("unit_price".into(), decimal_to_value(p.unit_price));
            let mut line_total = (quantity * p.unit_price).round_dp(2);
            if !is_return && rng.random_bool(0.08) {
                let discount = (line_total * Decimal::new(rng.random_range(10..=30), 2)).round_dp(2);
                line.insert("discount".into(), decimal_to_value(discount));
                line_total -= discount;
            }
            line.insert("vat_rate".into(), decimal_to_value(p.vat_rate));
            line.insert("promotion_id".into(), Value::Null);
            total += line_total;
            lines.push(Value::Object(line));
        }
        let store_id = store_id(store);
        let receipt_id = format!("{store_id}-{:016x}", rng.random::<u64>());
        let mut receipt = Map::new();
        receipt.insert("receipt_id".into(), receipt_id.into());
        receipt.insert("store_id".into(), store_id.into());
        receipt.insert("emitted_at".into(), emitted_at.into());
        if rng.random_bool(0.45) {
            receipt.insert("loyalty_card".into(), format!("LC{:010}", rng.random_range(0..10_000_000_000u64)).into());
        }
        receipt.insert("currency".into(), "EUR".into());
        receipt.insert("terminal_id".into(), format!("T{:02}", rng.random_range(1..=12)).into());
        receipt.insert("cashier_id".into(), format!("C{:04}", rng.random_range(1..=300)).into());
        let method = ["card", "card", "card", "cash", "mobile", "meal_voucher"][rng.random_range(0..6)];
        receipt.insert("payment".into(), json!({"method": method, "amount": decimal_to_value(total)}));
        receipt.insert("channel".into(), "store".into());
        receipt.insert("lines".into(), Value::Array(lines));
        Value::Object(receipt)
    }
}

/// `n` increasing emission instants spread over `span` from `start` (trading hours), with jitter.
pub fn spread_times(seed: u64, start: Timestamp, span: SignedDuration, n: usize) -> Vec<Timestamp> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7143);
    let step = span.as_millis() as f64 / n.max(1) as f64;
    (0..n)
        .map(|i| {
            let offset = (i as f64 + rng.random_range(0.0..1.0)) * step;
            start + SignedDuration::from_millis(offset as i64)
        })
        .collect()
}

/// How many receipts the whole chain emits in a store-local hour, for history long enough to forecast from:
/// the receipt stream [`Generator`] fills has no calendar of its own, so a caller that generates past days asks
/// this how many receipts to draw for each hour. Deterministic and documented, so a forecast's backtest knows
/// what it should recover:
///
/// - **daily profile** ([`HOUR_PROFILE`]): closed before 08:00 and from 21:00, a late-morning peak at 11:00 and
///   the evening rush at 18:00;
/// - **weekly profile** ([`WEEKDAY_FACTOR`]): quiet Monday and Tuesday, Friday and Saturday busiest, Sunday
///   open 09:00–12:59 only;
/// - **trend**: `yearly_growth` a year, linear in days from `origin`;
/// - **holidays**: closed on France's fixed-date public holidays ([`is_public_holiday`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seasonality {
    /// Receipts on an average weekday at `origin` (the profiles average to 1 over Monday–Saturday).
    pub receipts_per_day: f64,
    /// Growth of the volume per year, e.g. `0.08` for +8 % a year.
    pub yearly_growth: f64,
    /// The day the trend is measured from.
    pub origin: jiff::civil::Date,
}

/// Share of a trading day's receipts in each store-local hour, 00 to 23 (sums to 1).
pub const HOUR_PROFILE: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, // closed until 08:00
    0.04, 0.06, 0.09, 0.11, 0.10, 0.07, 0.06, 0.06, 0.07, 0.09, 0.11, 0.09, 0.05, // 08:00 to 20:59
    0.0, 0.0, 0.0, // closed from 21:00
];

/// Volume of each weekday relative to an average trading day, Monday first.
pub const WEEKDAY_FACTOR: [f64; 7] = [0.85, 0.85, 0.95, 1.0, 1.15, 1.2, 0.55];

/// France's fixed-date public holidays (1 Jan, 1 and 8 May, 14 Jul, 15 Aug, 1 and 11 Nov, 25 Dec); the
/// Easter-dependent ones are left out.
pub fn is_public_holiday(date: jiff::civil::Date) -> bool {
    matches!((date.month(), date.day()), (1, 1) | (5, 1) | (5, 8) | (7, 14) | (8, 15) | (11, 1) | (11, 11) | (12, 25))
}

impl Seasonality {
    /// The expected number of receipts in store-local `hour` (0–23) of `date` (a fraction: the caller rounds
    /// or draws around it).
    pub fn receipts(&self, date: jiff::civil::Date, hour: i8) -> f64 {
        let Some(&share) = usize::try_from(hour).ok().and_then(|h| HOUR_PROFILE.get(h)) else { return 0.0 };
        if is_public_holiday(date) {
            return 0.0;
        }
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        let sunday_closed = weekday == 6 && !(9..13).contains(&hour);
        if sunday_closed {
            return 0.0;
        }
        // Sunday's four morning hours carry its whole day.
        let share = if weekday == 6 { 0.25 } else { share };
        let days = (date - self.origin).get_days() as f64;
        let trend = (1.0 + self.yearly_growth * days / 365.25).max(0.0);
        self.receipts_per_day * WEEKDAY_FACTOR[weekday] * share * trend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::Receipt;

    #[test]
    fn receipts_are_valid_about_3kb_and_deterministic() {
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let mut a = Generator::new(7, 10_000);
        let mut b = Generator::new(7, 10_000);
        let mut sizes = 0;
        let mut lines = 0;
        let mut returns = 0;
        let mut cards = 0;
        for _ in 0..500 {
            let r = a.receipt_at(at);
            assert_eq!(r, b.receipt_at(at));
            sizes += serde_json::to_vec(&r).unwrap().len();
            let receipt = Receipt::from_value(&r).unwrap();
            lines += receipt.lines.len();
            returns += receipt.lines.iter().filter(|l| l.is_return()).count();
            cards += usize::from(receipt.loyalty_card.is_some());
            let paid: Decimal = receipt
                .lines
                .iter()
                .map(|l| (l.quantity * l.unit_price).round_dp(2) - l.discount.unwrap_or_default())
                .sum();
            assert_eq!(serde_json::to_string(&r["payment"]["amount"]).unwrap(), paid.to_string());
            assert_eq!(r["emitted_at"].as_str().unwrap(), "2026-11-23T10:00:00.000+01:00");
        }
        let avg = sizes / 500;
        assert!((2500..=3500).contains(&avg), "average receipt size {avg}");
        let return_share = returns as f64 / lines as f64;
        assert!((0.01..0.03).contains(&return_share), "returns {return_share}");
        assert!((150..300).contains(&cards), "loyalty cards on {cards} of 500");
    }

    #[test]
    fn everyday_categories_dominate_the_lines() {
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let mut g = Generator::new(3, 100);
        let mut lines = 0;
        let mut electronics = 0;
        let mut dairy = 0;
        for _ in 0..2000 {
            for line in g.receipt_at(at)["lines"].as_array().unwrap() {
                lines += 1;
                electronics += usize::from(line["category"] == "Electronics");
                dairy += usize::from(line["category"] == "Dairy");
            }
        }
        let share = |n: usize| n as f64 / lines as f64;
        assert!((0.12..0.18).contains(&share(dairy)), "dairy {}", share(dairy));
        assert!(share(electronics) < 0.01, "electronics {}", share(electronics));
    }

    #[test]
    fn stores_are_stable_and_the_table_matches() {
        assert_eq!(store(42), store(42));
        let table = store_table_csv(3);
        let mut lines = table.lines();
        assert_eq!(lines.next(), Some("store_id,name,city,region,latitude,longitude,manager"));
        assert!(lines.next().unwrap().starts_with("S00001,"));
        assert_eq!(table.lines().count(), 4);
    }

    #[test]
    fn seasonality_follows_its_profiles() {
        let s = Seasonality { receipts_per_day: 1000.0, yearly_growth: 0.1, origin: jiff::civil::date(2026, 1, 5) };
        assert!((HOUR_PROFILE.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let day = |d: jiff::civil::Date| (0..24).map(|h| s.receipts(d, h)).sum::<f64>();
        // Monday 5 Jan 2026 is the origin: no growth yet.
        assert!((day(jiff::civil::date(2026, 1, 5)) - 850.0).abs() < 1e-9);
        // Saturday's 11:00, five days of growth later.
        let saturday_11 = 1000.0 * 1.2 * 0.11 * (1.0 + 0.1 * 5.0 / 365.25);
        assert!((s.receipts(jiff::civil::date(2026, 1, 10), 11) - saturday_11).abs() < 1e-9);
        assert_eq!(s.receipts(jiff::civil::date(2026, 1, 5), 7), 0.0);
        assert_eq!(s.receipts(jiff::civil::date(2026, 1, 11), 14), 0.0, "Sunday afternoon is closed");
        assert!((day(jiff::civil::date(2026, 1, 11)) - 550.0 * (1.0 + 0.1 * 6.0 / 365.25)).abs() < 1e-9);
        assert_eq!(day(jiff::civil::date(2026, 11, 11)), 0.0, "Armistice day is closed");
        // A year later, 10 % more.
        let later = day(jiff::civil::date(2027, 1, 4)) / 850.0;
        assert!((later - (1.0 + 0.1 * 364.0 / 365.25)).abs() < 1e-9, "{later}");
    }

    #[test]
    fn times_increase_within_the_span() {
        let start: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
        let times = spread_times(1, start, SignedDuration::from_hours(13), 1000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times[0] >= start && *times.last().unwrap() < start + SignedDuration::from_hours(13));
    }
}
