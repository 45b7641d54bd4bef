"""Titles, series, seasons, episodes, genres, people, languages, ratings, artwork, search."""
